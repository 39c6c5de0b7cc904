# lake_assets developer targets. Everything runs from the project's own .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml setup.py | cksum | cut -d' ' -f1)

# The demo and `make dev` share these settings: a generated offline mirror, a lake and a DuckDB
# file under data/demo/, and the instance config that limits the warehouse pool. DEMO_DIR and
# INSTANCE can be pointed elsewhere (the fault tests do).
DEMO_DIR ?= $(CURDIR)/data/demo
INSTANCE ?= $(CURDIR)/dagster_home
DEMO_MONTHS ?= 2021-01 2021-02 2021-03
DEMO_ROWS ?= 20000
# The partitions are the months the mirror holds (make demo DEMO_MONTHS='2021-01 2021-02 …'
# generates more); TLC_START_MONTH/TLC_END_MONTH bound them so the UI offers no month that is
# not there.
DEMO_ENV := \
	TLC_START_MONTH='$(firstword $(DEMO_MONTHS))' \
	TLC_END_MONTH='$(lastword $(DEMO_MONTHS))' \
	TLC_SOURCE_URL='file://$(DEMO_DIR)/mirror/{service}/{service}_tripdata_{year}-{month}.csv.gz' \
	TLC_ZONES_URL='file://$(DEMO_DIR)/mirror/misc/taxi_zone_lookup.csv' \
	LAKE_DIR='$(DEMO_DIR)/lake' \
	DUCKDB_PATH='$(DEMO_DIR)/warehouse.duckdb' \
	LAKE_ENV=local \
	DAGSTER_HOME='$(INSTANCE)' \
	PATH='$(BIN):$(PATH)'

# bqemulator pins its own duckdb and sqlglot, so it gets a virtualenv of its own.
BQEMU_VENV := .venv-bqemu
BQEMU_STAMP := $(BQEMU_VENV)/.installed-1.4.0
GCP_EMULATOR_DIR := $(CURDIR)/data/gcp-emulators
# Azurite (Azure Blob Storage's emulator) is an npm package, installed beside the project.
AZURITE_VERSION := 3.37.0
AZURITE := $(CURDIR)/.tools/node_modules/.bin/azurite-blob

.PHONY: install install-azurite instance materialize test test-local test-gcp test-faults \
	test-deploy test-ui test-clouds test-containers lint demo mirror demo-gcp dev deploy-local deploy-stop \
	containers-up containers-down gcp-emulators \
	s3-emulator azure-emulator bench bench-quick bench-overhead bench-course clean

# Under a lock: make targets started in parallel (the fault tests do) install once, not at once.
$(STAMP): pyproject.toml setup.py
	@flock '$(CURDIR)/.venv.lock' sh -c 'test -f $@ || { \
		echo "installing lake_assets into $(VENV) (a few minutes the first time)" && \
		rm -f $(VENV)/.installed-* && \
		$(PYTHON) -m venv $(VENV) && \
		$(BIN)/python -m pip install --quiet --upgrade pip && \
		$(BIN)/python -m pip install --quiet -e ".[dev,bench,deploy,s3,azure,ui]" && \
		touch $@; }'

install: $(STAMP)

$(AZURITE):
	npm install --silent --no-audit --no-fund --prefix '$(CURDIR)/.tools' 'azurite@$(AZURITE_VERSION)'

install-azurite: $(AZURITE)

# numpy is a dependency bqemulator uses but does not declare.
$(BQEMU_STAMP):
	rm -rf $(BQEMU_VENV)
	$(PYTHON) -m venv $(BQEMU_VENV)
	$(BQEMU_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BQEMU_VENV)/bin/python -m pip install --quiet 'bqemulator==1.4.0' numpy
	touch $@

# Creates (or migrates) the Dagster instance once, under a lock, before anything runs in it:
# first runs started in parallel on a fresh folder corrupt it. Every target below runs this.
instance: $(STAMP)
	@$(BIN)/python -m lake_assets.instance prepare --home '$(INSTANCE)' \
		--config '$(CURDIR)/dagster_home/dagster.yaml'

# One run on the demo settings from the CLI, e.g.
#   make materialize SELECT=raw/green_tripdata,lake/green_tripdata PARTITION=2021-01
materialize: $(STAMP) instance
	@echo "dagster asset materialize --select '$(SELECT)' $(if $(PARTITION),--partition $(PARTITION))"
	@$(DEMO_ENV) $(BIN)/dagster asset materialize -m lake_assets.definitions \
		--select '$(SELECT)' $(if $(PARTITION),--partition '$(PARTITION)')

lint: $(STAMP)
	$(BIN)/ruff check lake_assets lake_assets_tests lake_dev
	$(BIN)/ruff format --check lake_assets lake_assets_tests lake_dev
	VIRTUAL_ENV='$(CURDIR)/$(VENV)' $(BIN)/dg check defs

# Stages: lint, everything local, LAKE_ENV=gcp against the emulators, the fault suite (real
# kills and faulty servers against the CLI), the deployment's processes on PostgreSQL, the UI in
# headless Chromium against that stack, every lake store against its emulator, then deploy/ as
# shipped, as containers on a Docker daemon the stage starts.
test: lint test-local test-gcp test-faults test-deploy test-ui test-clouds test-containers

STAGES := gcp or faults or deploy or clouds or ui or containers
test-local: $(STAMP)
	@echo "pytest -m 'not ($(STAGES))'"
	@DAGSTER_HOME= PATH='$(BIN):$(PATH)' $(BIN)/python -m pytest -m 'not ($(STAGES))'

test-deploy: $(STAMP)
	@echo "pytest -m deploy"
	@DAGSTER_HOME= PATH='$(BIN):$(PATH)' $(BIN)/python -m pytest -m deploy

# Playwright drives Debian's Chromium (/usr/bin/chromium); screenshots go to build/ui/.
test-ui: $(STAMP)
	@echo "pytest -m ui"
	@DAGSTER_HOME= PATH='$(BIN):$(PATH)' $(BIN)/python -m pytest -m ui

test-faults: $(STAMP)
	@echo "pytest -m faults"
	@DAGSTER_HOME= PATH='$(BIN):$(PATH)' $(BIN)/python -m pytest -m faults

test-gcp: $(STAMP) $(BQEMU_STAMP)
	@echo "pytest -m gcp"
	@DAGSTER_HOME= PATH='$(BIN):$(PATH)' BQEMU_PYTHON='$(CURDIR)/$(BQEMU_VENV)/bin/python' \
		$(BIN)/python -m pytest -m gcp

# The LakeStorage contract on the folder, fake-gcs-server, moto's S3 server and Azurite, and a
# month end to end with the lake on S3 and on Azure Blob.
test-clouds: $(STAMP) $(BQEMU_STAMP) $(AZURITE)
	@echo "pytest -m clouds"
	@DAGSTER_HOME= PATH='$(BIN):$(PATH)' BQEMU_PYTHON='$(CURDIR)/$(BQEMU_VENV)/bin/python' \
		AZURITE='$(AZURITE)' $(BIN)/python -m pytest -m clouds

# deploy/docker-compose.yaml as shipped, on a Docker daemon of its own (dockerd --iptables=false,
# started and stopped by the tests) with stand-ins for the public base images (debootstrap):
# Debian's docker.io, docker-compose and debootstrap must be installed (.ci/run does).
test-containers: $(STAMP)
	@echo "pytest -m containers"
	@DAGSTER_HOME= PATH='$(BIN):$(PATH)' $(BIN)/python -m pytest -m containers

# The same stack for you, on the demo's mirror (DEMO_MONTHS, DEMO_ROWS), on your Docker: the
# UI on http://127.0.0.1:3000, read-only on :3001. containers-down keeps the data (its volumes).
# COMPOSE_OVERRIDES: compose files of your own to add (e.g. a build network), space-separated.
COMPOSE_OVERRIDES ?=
CONTAINERS_ARGS = $(foreach f,$(COMPOSE_OVERRIDES),--override '$(f)')
containers-up: $(STAMP)
	@$(BIN)/python -m lake_dev.containers up --months $(DEMO_MONTHS) --rows $(DEMO_ROWS) \
		$(CONTAINERS_ARGS)

containers-down: $(STAMP)
	@$(BIN)/python -m lake_dev.containers down $(CONTAINERS_ARGS)

demo: $(STAMP) instance
	@echo "python -m lake_dev.demo --months $(DEMO_MONTHS) --rows $(DEMO_ROWS)  (about 2 minutes)"
	@$(DEMO_ENV) $(BIN)/python -m lake_dev.demo --months $(DEMO_MONTHS) --rows $(DEMO_ROWS)

# Months on the offline mirror without loading them: `make dev` then offers them as Missing, to
# backfill from the UI.
mirror: $(STAMP)
	@echo "python -m lake_dev.generator --out $(DEMO_DIR)/mirror --months $(DEMO_MONTHS) --rows $(DEMO_ROWS)"
	@$(BIN)/python -m lake_dev.generator --out '$(DEMO_DIR)/mirror' --months $(DEMO_MONTHS) \
		--rows $(DEMO_ROWS) >/dev/null

# fake-gcs-server on 127.0.0.1:4443 and bqemulator on 127.0.0.1:9050, in the foreground.
gcp-emulators: $(STAMP) $(BQEMU_STAMP)
	$(BIN)/python -m lake_dev.emulators --dir '$(GCP_EMULATOR_DIR)' \
		--bqemu-python '$(CURDIR)/$(BQEMU_VENV)/bin/python'

# moto's S3 server on 127.0.0.1:5000, or Azurite on 127.0.0.1:10000, in the foreground; each
# creates the bucket (container) lake-assets-demo and prints the settings to export.
s3-emulator: $(STAMP)
	$(BIN)/python -m lake_dev.emulators s3 --dir '$(CURDIR)/data/s3-emulator'

azure-emulator: $(STAMP) $(AZURITE)
	$(BIN)/python -m lake_dev.emulators azure --dir '$(CURDIR)/data/azure-emulator'

# The demo with LAKE_ENV=gcp: starts both emulators on free ports, runs, stops them.
demo-gcp: $(STAMP) $(BQEMU_STAMP) instance
	@echo "python -m lake_dev.demo --gcp-emulators $(GCP_EMULATOR_DIR) --months $(DEMO_MONTHS)"
	@$(DEMO_ENV) $(BIN)/python -m lake_dev.demo --gcp-emulators '$(GCP_EMULATOR_DIR)' \
		--bqemu-python '$(CURDIR)/$(BQEMU_VENV)/bin/python' \
		--months $(DEMO_MONTHS) --rows $(DEMO_ROWS)

DEV_PORT ?= 3000
dev: $(STAMP) instance
	@test -d '$(DEMO_DIR)/mirror' || echo "no demo mirror yet: run 'make demo' first to load months offline"
	@echo "dg dev -p $(DEV_PORT)  (the UI on http://127.0.0.1:$(DEV_PORT); months $(DEMO_MONTHS))"
	@$(DEMO_ENV) VIRTUAL_ENV='$(CURDIR)/$(VENV)' $(BIN)/dg dev -p $(DEV_PORT)

# The deployment's topology as processes (PostgreSQL, code server, webserver, daemon) on the
# demo's settings; in the foreground, Ctrl-C stops all. `make deploy-stop` ends a backgrounded one.
DEPLOY_DIR ?= $(CURDIR)/data/deploy
deploy-local: $(STAMP)
	@test -d '$(DEMO_DIR)/mirror' || echo "no demo mirror yet: run 'make demo' first to load months offline"
	@$(DEMO_ENV) $(BIN)/python -m lake_dev.deploy_local start --dir '$(DEPLOY_DIR)'

deploy-stop: $(STAMP)
	@$(BIN)/python -m lake_dev.deploy_local stop --dir '$(DEPLOY_DIR)'

# Generates the month once (build/bench/data), then runs every case as its own process, and
# rewrites the results block of docs/benchmark.md.
bench: $(STAMP)
	$(BIN)/python -m lake_dev.bench --rows 7500000 --rounds 3 --out build/bench.json \
		--page docs/benchmark.md

bench-quick: $(STAMP)
	$(BIN)/python -m lake_dev.bench --quick --out build/bench-quick.json

# Only the run overhead (lake_dev/overhead.py), 3 rounds, into its block of docs/benchmark.md.
bench-overhead: $(STAMP)
	$(BIN)/python -m lake_dev.bench --overhead-only --out build/bench-overhead.json \
		--page docs/benchmark.md

# The course's data (yellow and green 2019-2020, fhv 2019: 160M rows in 60 monthly files) as one
# backfill through make deploy-local's stack, then through the zoomcamp flow, into
# docs/benchmark.md. COURSE_SCALE=0.1 loads a tenth of every month.
COURSE_SCALE ?= 1
bench-course: $(STAMP)
	$(BIN)/python -m lake_dev.course --scale $(COURSE_SCALE) --out build/bench-course.json \
		--page docs/benchmark.md

clean:
	rm -rf data/demo data/gcp-emulators build .pytest_cache
