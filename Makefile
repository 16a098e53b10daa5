# Two commands: `make demo` runs the quick-start DAG end to end against the local server,
# `make test` runs the whole test suite (system and browser tests included). Both create the
# virtualenv on first use; `make test` also installs the Debian packages the tests drive.
#
# AIRFLOW_VERSION and PYTHON choose the Airflow release and the interpreter, e.g.
# `make test AIRFLOW_VERSION=3.1.8` or `make demo PYTHON=python3.13`. Each pair installs from its own
# constraints file, constraints/airflow-<AIRFLOW_VERSION>-py<X.Y>.txt, into its own virtualenv
# (.venv for the default Airflow with python3, .venv-<AIRFLOW_VERSION>-py<X.Y> otherwise).
DEFAULT_AIRFLOW_VERSION := 3.3.2
AIRFLOW_VERSION ?= $(DEFAULT_AIRFLOW_VERSION)
PYTHON ?= python3
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
CONSTRAINTS := constraints/airflow-$(AIRFLOW_VERSION)-py$(PYVER).txt
SUPPORTED := $(patsubst constraints/airflow-%.txt,%,$(wildcard constraints/airflow-*.txt))
ifeq ($(AIRFLOW_VERSION)|$(PYTHON),$(DEFAULT_AIRFLOW_VERSION)|python3)
VENV ?= .venv
else
VENV ?= .venv-$(AIRFLOW_VERSION)-py$(PYVER)
endif
BIN := $(VENV)/bin
# uv installs the pinned set in about a third of pip's time (README, "Supported versions").
UV_VERSION := 0.13.9
VIDEO ?=
# `make demo EXECUTOR=celery` (or local) brings up the system tests' deployment with its UI instead.
EXECUTOR ?=
# Debian packages the tests drive: Postgres for the system tests' metadata database and Redis for
# their Celery broker (tests/system), Chromium for the browser tests (tests/browser), ffmpeg for the
# video facts tests (tests/test_video_facts*.py: files of every container, checked against ffprobe).
# Nothing downloads a browser at run time.
DEBIAN_PACKAGES ?= postgresql redis-server chromium ffmpeg
# The provider's core tests, run on every supported Airflow and Python (`make core-test`): hook,
# operators, sensor, trigger, DAG runs with retries, the scan for the API key in what they logged,
# videos read straight from object storage (moto), the Airflow and common-compat names compat.py uses, and
# the task store whose writes the metadata database refuses.
CORE_TESTS ?= tests/test_api.py tests/test_provider_info.py tests/test_hook.py tests/test_operators.py tests/test_waiting.py \
	tests/test_trigger.py tests/test_sensor_pacing.py tests/test_reliability.py tests/test_dag_runs.py tests/test_leaks.py \
	tests/test_presigned.py tests/test_promises.py tests/test_compat.py tests/test_video_facts.py \
	tests/test_task_store.py
# Azurite, the Azure Storage emulator (npm), for the Azure Blob tests; they are skipped without npm.
AZURITE_VERSION ?= 3.35.0
AZURITE_BLOB := $(VENV)/azurite/node_modules/.bin/azurite-blob
# The official Batch Processing client, `inference rf-cloud` of inference-cli, for the tests that drive
# the local server with it (tests/server/test_batch_cli.py). It brings opencv-python and its own pins
# (about 765 MB), so it lives in a virtualenv of its own, made once, never the project's.
INFERENCE_CLI_VERSION ?= 1.8.3
CLI_VENV ?= .venv-cli
INFERENCE_CLI := $(CLI_VENV)/bin/inference

.PHONY: install demo demo-down test core-test system-test system-packages azurite inference-cli lint docs dist bench clean check-version

check-version:
	@if [ -z "$(PYVER)" ]; then \
		echo "error: PYTHON=$(PYTHON) is not a Python interpreter on this machine. Set PYTHON to one, e.g." \
			"PYTHON=python3.12." >&2; exit 1; \
	fi
	@if [ ! -f "$(CONSTRAINTS)" ]; then \
		echo "error: Airflow $(AIRFLOW_VERSION) on Python $(PYVER) is not supported: there is no $(CONSTRAINTS)." \
			"Supported (Airflow-Python): $(SUPPORTED). Choose one, e.g. make demo AIRFLOW_VERSION=3.1.8" \
			"PYTHON=python3.11." >&2; exit 1; \
	fi

$(BIN)/.installed: pyproject.toml contract/pyproject.toml server/pyproject.toml $(wildcard $(CONSTRAINTS)) | check-version
	@echo "==> Creating $(VENV): Airflow $(AIRFLOW_VERSION) on Python $(PYVER), the contract, the local server and the provider with its celery, test, dev and docs extras"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c $(CONSTRAINTS) \
		"apache-airflow==$(AIRFLOW_VERSION)" -e ./contract -e ./server -e ".[server,celery,test,dev,docs]"
	@touch $@

install: $(BIN)/.installed

# Without EXECUTOR: the quick-start DAG end to end under `airflow dags test`. With EXECUTOR=local or
# celery: the whole deployment of the system tests with Airflow's UI, until Ctrl-C or `make demo-down`.
demo: $(BIN)/.installed
ifeq ($(EXECUTOR),)
	$(BIN)/python scripts/demo.py $(if $(VIDEO),--video "$(VIDEO)")
else
	@$(MAKE) --no-print-directory system-packages
	$(BIN)/python scripts/deployment.py up --executor "$(EXECUTOR)"
endif

demo-down:
	$(BIN)/python scripts/deployment.py down

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
			"Run the tests on Debian or Ubuntu, or install PostgreSQL, Redis, Chromium and ffmpeg yourself." >&2; \
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

# Made only when missing (uv from the project's virtualenv installs it); `make clean` removes it.
$(CLI_VENV)/.installed: | $(BIN)/.installed
	@echo "==> Creating $(CLI_VENV): inference-cli $(INFERENCE_CLI_VERSION), the official Batch Processing client, for the CLI tests"
	$(PYTHON) -m venv $(CLI_VENV)
	$(BIN)/uv pip install --quiet --python $(CLI_VENV)/bin/python "inference-cli==$(INFERENCE_CLI_VERSION)"
	@touch $@

inference-cli: $(CLI_VENV)/.installed

test: $(BIN)/.installed system-packages azurite $(CLI_VENV)/.installed
	AZURITE_BLOB="$(AZURITE_BLOB)" INFERENCE_CLI="$(INFERENCE_CLI)" $(BIN)/python -m pytest

# The provider's core tests (CORE_TESTS) on any supported Airflow and Python, e.g.
# `make core-test AIRFLOW_VERSION=3.0.6` or `make core-test PYTHON=python3.13` (what CI runs on each).
core-test: $(BIN)/.installed
	$(BIN)/python -m pytest $(CORE_TESTS)

# The real deployments only, one after the other, as processes on 127.0.0.1: Postgres, Airflow's
# api-server, scheduler, dag-processor and triggerer, and local servers, with the LocalExecutor;
# and with the CeleryExecutor (Redis, two Celery workers, two triggerers, S3 through moto).
system-test: $(BIN)/.installed system-packages
	$(BIN)/python -m pytest tests/system

LINT_PATHS := airflow_provider_videoinfer contract server tests example_dags benchmarks scripts constraints
lint: $(BIN)/.installed
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy airflow_provider_videoinfer contract/videoinfer_contract server/videoinfer_server

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
	$(BIN)/python benchmarks/bench_video_facts.py

clean:
	rm -rf $(VENV) $(CLI_VENV) .demo .pytest_cache dist docs/_build docs/api/_generated
