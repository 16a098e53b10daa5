# Two commands: `make demo` runs the quick-start DAG end to end against the local server,
# `make test` runs the whole test suite. Both create the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
AIRFLOW_VERSION ?= 3.3.2
VIDEO ?=

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.10+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 10) else None'
	@echo "==> Creating $(VENV) and installing the provider with its server and test extras (about a minute)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[server,test,dev]"
	@touch $@

demo: $(BIN)/.installed
	$(BIN)/python scripts/demo.py $(if $(VIDEO),--video "$(VIDEO)")

test: $(BIN)/.installed
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check airflow_provider_videoinfer tests example_dags benchmarks scripts
	$(BIN)/mypy airflow_provider_videoinfer

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_upload.py
	$(BIN)/python benchmarks/bench_triggerer.py
	$(BIN)/python benchmarks/bench_results.py
	$(BIN)/python benchmarks/bench_server_processing.py

clean:
	rm -rf $(VENV) .demo .pytest_cache
