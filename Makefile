# The two commands a new machine needs: `make demo` and `make test`. Everything is installed here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
AIRFLOW_VERSION ?= 3.3.2
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)

# Debian packages some test suites need (browser, servers); installed when missing (needs root).
# redis-server, docker-compose, iproute2: the Redis token cache tests and the compose file validation.
# chromium: the connection-form browser test (make test-ui), driven by Playwright.
# postgresql: the throw-away metadata database of the native Celery cluster (make test-cluster).
SYSTEM_PACKAGES ?= redis-server docker-compose iproute2 chromium postgresql

.PHONY: install system-deps demo test lint types pytest test-ui test-airflow2 test-cluster bench-cluster clean \
	dist dist-check test-lowest docs

# Every runtime extra a user may pick, and the dev tooling from pyproject's [dependency-groups] (PEP 735,
# not published): `uv pip install --group` (uv >= 0.8).
EXTRAS := emulator,redis,bigquery,openlineage

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[$(EXTRAS)]' --group test --group cluster \
		--group docs "apache-airflow==$(AIRFLOW_VERSION)"
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

demo: install
	$(BIN)/carto-provider demo --dags-folder carto_provider/example_dags

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy carto_provider

pytest: install system-deps
	$(BIN)/python -m pytest -m "not ui and not cluster"

# The connection form in a real browser: airflow api-server + Debian's chromium (tests/ui, marker `ui`).
test-ui: install system-deps
	$(BIN)/python -m pytest -m ui tests/ui

# Airflow 2.11 in a second venv: the auth, hook, connection, operator and trigger suites and the daily ETL
# example again (an Airflow-3-only test in those files skips itself on 2.x).
AIRFLOW2_VERSION ?= 2.11.*
VENV2 ?= .venv-airflow2
AIRFLOW2_STAMP := $(VENV2)/.installed-airflow2
AIRFLOW2_TESTS ?= tests/auth tests/hooks tests/connection tests/operators tests/triggers \
	tests/emulator/test_oauth.py tests/integration/test_oauth_cli.py tests/integration/test_example_daily_etl.py \
	tests/integration/test_common_sql.py tests/integration/test_assets.py \
	--deselect tests/auth/test_dw_client.py

$(AIRFLOW2_STAMP): pyproject.toml Makefile $(STAMP)
	test -x $(VENV2)/bin/python || $(PYTHON) -m venv $(VENV2)
	$(BIN)/uv pip install --python $(VENV2)/bin/python --quiet -e '.[$(EXTRAS)]' --group test \
		"apache-airflow==$(AIRFLOW2_VERSION)"
	touch $@

test-airflow2: $(AIRFLOW2_STAMP) system-deps
	$(VENV2)/bin/python -m pytest -m "not ui" $(AIRFLOW2_TESTS)

# A real Airflow 3.3 cluster on this machine (tests/cluster, marker `cluster`): Debian's PostgreSQL 15 in a
# temporary directory, redis-server, the CARTO emulator, api-server, scheduler, dag-processor, triggerer
# and two Celery workers, configured by deploy/airflow.env like docker-compose.yml; faults injected for
# real. Everything is stopped and removed at the end. About 5 min on 2 cores.
test-cluster: install
	$(MAKE) --no-print-directory system-deps SYSTEM_PACKAGES="redis-server docker-compose postgresql"
	$(BIN)/python -m pytest -m cluster tests/cluster -p no:cacheprovider --durations=0

# The same scenarios, writing their figures into benchmarks/RESULTS.md (section "Cluster").
bench-cluster: install
	$(MAKE) --no-print-directory system-deps SYSTEM_PACKAGES="redis-server docker-compose postgresql"
	CARTO_CLUSTER_RESULTS=benchmarks/RESULTS.md $(BIN)/python -m pytest -m cluster tests/cluster -p no:cacheprovider --durations=0

# The wheel and sdist as PyPI shows them: built by uv, checked by twine (README renders, metadata
# complete) and check-wheel-contents (no stray or duplicate files).
dist: install
	rm -rf dist
	$(BIN)/uv build --quiet --out-dir dist

dist-check: dist
	$(BIN)/twine check --strict dist/*
	$(BIN)/check-wheel-contents dist/*.whl

# The built wheel at the lowest versions its metadata allows (uv --resolution lowest-direct), in a fresh
# venv next to each supported Airflow line: every module imports, the parse-time, hook and quickstart
# suites pass, and `carto-provider demo` runs from outside the repository (tests/lowest/run.sh).
# About 3 min per line on 2 cores with a warm uv cache.
LOWEST_AIRFLOWS ?= 3.3.2 2.11.*
test-lowest: dist
	for v in $(LOWEST_AIRFLOWS); do \
	  tests/lowest/run.sh $(BIN)/uv $(BIN)/python dist/*.whl "apache-airflow==$$v" $(VENV)-lowest-$${v%%.*} || exit 1; \
	done

# The documentation site (mkdocs.yml, docs/) into site/, warnings as errors.
docs: install
	$(BIN)/mkdocs build --strict --site-dir site

test: lint types dist-check docs pytest test-lowest test-airflow2 test-ui test-cluster

# Benchmarks against carto-auth 0.2.0 on the emulator (about 5 min on 2 cores); writes benchmarks/RESULTS.md.
# Of the Debian packages, only redis-server (the fleet benchmark's Redis token cache).
.PHONY: bench bench-contract
bench: install
	$(MAKE) --no-print-directory system-deps SYSTEM_PACKAGES=redis-server
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[$(EXTRAS)]' --group test --group bench \
		"apache-airflow==$(AIRFLOW_VERSION)"
	$(BIN)/python -m benchmarks.run

# carto-auth's documented examples against carto-auth 0.2.0 and this package side by side (about 15 s).
bench-contract: install
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[$(EXTRAS)]' --group test --group bench \
		"apache-airflow==$(AIRFLOW_VERSION)"
	$(BIN)/python -m benchmarks.run --only 7 --no-write

clean:
	rm -rf $(VENV) $(VENV2) $(VENV)-lowest-* .mypy_cache .ruff_cache .pytest_cache dist site
