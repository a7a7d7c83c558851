# Two commands on a fresh machine (only python3 needed):
#   make run   - install, generate demo data, run the nightly pipeline, print the KPI summary
#   make test  - install, run the whole test suite (the CI entry)
# and for development:
#   make test-fast - the unit tests (no dbt night, no Airflow), well under a minute
SHELL := /bin/bash
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The demo's year ends here; `make run` runs the night of that day, so the freshness
# checks see a complete night (a real deployment runs each night's logical date).
DEMO_END := 2026-10-31

# Nothing may phone home: Airflow, cosmos, dbt and friends are told so here and in code.
export DO_NOT_TRACK := 1
export SCARF_NO_ANALYTICS := true
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export AIRFLOW__USAGE_DATA_COLLECTION__ENABLED := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
# uv uses this machine's python3 and never downloads an interpreter.
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3

.PHONY: install run demo-data test test-fast lint bench clean browser postgres

install: $(STAMP)

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --compile-bytecode: machines that set PYTHONDONTWRITEBYTECODE (this kind does) would
# otherwise compile every imported module from source in every process: Great Expectations
# took 11 s to import instead of 4, and each Airflow task paid the same for its imports.
$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode --all-extras
	touch $(STAMP)

demo-data: install
	$(BIN)/cxkpi demo-data --end-date $(DEMO_END)

run: install demo-data
	$(BIN)/cxkpi run --logical-date $(DEMO_END)

# loadscope: a module's tests (a class's, where a file has classes of long nights) run on
# one worker, so module fixtures run once; in the order tests/conftest.py sorts them
# (longest first), not xdist's by test count. Session-wide nights are built once and
# shared by both workers (conftest.shared_folder). Lint first: CI keeps ruff and mypy clean.
test: install lint browser postgres
	$(BIN)/pytest -n 2 --dist loadscope --no-loadscope-reorder

# The role reports are opened in a real browser by the tests: Debian's headless Chromium,
# installed from Debian's packages when missing (as root, or through sudo).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y --no-install-recommends chromium \
	    || { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium; }; }

# The PostgreSQL tests start a private server (tests/pg_server.py): Debian's server
# package, installed when missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y --no-install-recommends postgresql \
	    || { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends postgresql; }; }

# Everything not marked integration (real DuckDB/dbt/GX nights) or e2e (real Airflow).
test-fast: install
	$(BIN)/pytest -n 2 -m "not integration and not e2e"

lint: install
	$(BIN)/ruff check src tests dags bench
	$(BIN)/ruff format --check src tests dags bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/pipeline_bench.py

clean:
	rm -rf landing warehouse published runs .airflow dbt_project/target dbt_project/logs
