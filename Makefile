# lake_assets developer targets. Everything runs from the project's own .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml setup.py | cksum | cut -d' ' -f1)

# The demo and `make dev` share these settings: a generated offline mirror, a lake and a DuckDB
# file under data/demo/, and the instance config that limits the warehouse pool.
DEMO_DIR := $(CURDIR)/data/demo
DEMO_MONTHS ?= 2021-01 2021-02 2021-03
DEMO_ROWS ?= 20000
DEMO_ENV := \
	TLC_SOURCE_URL='file://$(DEMO_DIR)/mirror/{service}/{service}_tripdata_{year}-{month}.csv.gz' \
	TLC_ZONES_URL='file://$(DEMO_DIR)/mirror/misc/taxi_zone_lookup.csv' \
	LAKE_DIR='$(DEMO_DIR)/lake' \
	DUCKDB_PATH='$(DEMO_DIR)/warehouse.duckdb' \
	LAKE_ENV=local \
	DAGSTER_HOME='$(CURDIR)/dagster_home' \
	PATH='$(BIN):$(PATH)'

.PHONY: install test lint demo dev bench bench-quick clean

$(STAMP): pyproject.toml setup.py
	rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check lake_assets lake_assets_tests
	$(BIN)/ruff format --check lake_assets lake_assets_tests

test: $(STAMP) lint
	DAGSTER_HOME= PATH='$(BIN):$(PATH)' $(BIN)/python -m pytest

demo: $(STAMP)
	$(DEMO_ENV) $(BIN)/python -m lake_assets.demo --months $(DEMO_MONTHS) --rows $(DEMO_ROWS)

dev: $(STAMP)
	@test -d '$(DEMO_DIR)/mirror' || echo "no demo mirror yet: run 'make demo' first to load months offline"
	$(DEMO_ENV) $(BIN)/dagster dev -w workspace.yaml

# Generates the month once (build/bench/data), then runs every case as its own process.
bench: $(STAMP)
	$(BIN)/python -m lake_assets.bench --rows 7500000 --rounds 3 --out build/bench.json

bench-quick: $(STAMP)
	$(BIN)/python -m lake_assets.bench --quick --out build/bench-quick.json

clean:
	rm -rf data/demo build .pytest_cache
