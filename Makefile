# Two commands: `make demo` runs the quick-start DAG end to end against the local server,
# `make test` runs the whole test suite (system and browser tests included). Both create the
# virtualenv on first use; `make test` also installs the Debian packages the tests drive.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
AIRFLOW_VERSION ?= 3.3.2
VIDEO ?=
# Debian packages the tests drive: Postgres for the system tests' metadata database (tests/system),
# Chromium for the browser tests (tests/browser). Nothing downloads a browser at run time.
DEBIAN_PACKAGES ?= postgresql chromium
# Azurite, the Azure Storage emulator (npm), for the Azure Blob tests; they are skipped without npm.
AZURITE_VERSION ?= 3.35.0
AZURITE_BLOB := $(VENV)/azurite/node_modules/.bin/azurite-blob

.PHONY: demo test system-test system-packages azurite lint docs dist bench clean

$(BIN)/.installed: pyproject.toml contract/pyproject.toml server/pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.10+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 10) else None'
	@echo "==> Creating $(VENV) and installing the contract, the local server and the provider with its test extras (about a minute)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt "apache-airflow==$(AIRFLOW_VERSION)" -e ./contract -e ./server -e ".[server,test,dev,docs]"
	@touch $@

demo: $(BIN)/.installed
	$(BIN)/python scripts/demo.py $(if $(VIDEO),--video "$(VIDEO)")

# Installs only what is missing, without prompts (CI has no stdin); needs root for that.
system-packages:
	@missing=""; \
	for package in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' "$$package" 2>/dev/null | grep -q '^install ok installed$$' \
			|| missing="$$missing $$package"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
		echo "error: the tests need the Debian packages$$missing, and this machine has no apt-get." \
			"Run the tests on Debian or Ubuntu, or install PostgreSQL and Chromium yourself." >&2; \
		exit 1; \
	fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "error: the tests need the Debian packages$$missing, which are not installed, and installing" \
			"them needs root. Run: sudo apt-get update && sudo apt-get install -y$$missing" >&2; \
		exit 1; \
	fi; \
	echo "==> Installing the Debian packages$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -q && apt-get install -y -q$$missing </dev/null

azurite: $(BIN)/.installed
	@if [ -x "$(AZURITE_BLOB)" ]; then exit 0; fi; \
	if command -v npm >/dev/null; then \
		echo "==> Installing Azurite $(AZURITE_VERSION) (npm) into $(VENV)/azurite for the Azure Blob tests"; \
		npm install --silent --no-audit --no-fund --prefix "$(VENV)/azurite" "azurite@$(AZURITE_VERSION)"; \
	else \
		echo "npm not found: the Azure Blob tests (tests/test_presigned_azure.py) will be skipped."; \
	fi

test: $(BIN)/.installed system-packages azurite
	AZURITE_BLOB="$(AZURITE_BLOB)" $(BIN)/python -m pytest

# The real deployment only: Postgres, Airflow's api-server, scheduler, dag-processor and
# triggerer, and the local server as processes on 127.0.0.1 (about 8 minutes on 2 cores).
system-test: $(BIN)/.installed system-packages
	$(BIN)/python -m pytest tests/system

lint: $(BIN)/.installed
	$(BIN)/ruff check airflow_provider_videoinfer contract server tests example_dags benchmarks scripts
	$(BIN)/mypy airflow_provider_videoinfer contract/videoinfer_contract server/videoinfer_server

# The documentation site (Sphinx) into docs/_build/html; every warning is an error.
docs: $(BIN)/.installed
	rm -rf docs/api/_generated
	$(BIN)/sphinx-build -b html -E -W --keep-going -q docs docs/_build/html
	@echo "==> Documentation built: docs/_build/html/index.html"

# The sdist and the wheel into dist/, checked: metadata and README (twine), LICENSE and NOTICE in
# both, the sdist's test files, and a subset of its tests run from the unpacked archive.
SDIST_TESTS ?= tests/test_provider_info.py tests/test_api.py \
	tests/test_example_dags.py::test_every_example_dag_imports_without_errors_or_cycles \
	tests/test_example_dags.py::test_submit_and_wait_returns_the_output_url
dist: $(BIN)/.installed
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(BIN)/python scripts/check_dist.py dist $(SDIST_TESTS)

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_upload.py
	$(BIN)/python benchmarks/bench_presigned.py
	$(BIN)/python benchmarks/bench_triggerer.py
	$(BIN)/python benchmarks/bench_results.py
	$(BIN)/python benchmarks/bench_server_processing.py
	$(BIN)/python benchmarks/bench_contact_sheet.py

clean:
	rm -rf $(VENV) .demo .pytest_cache dist docs/_build docs/api/_generated
