"""Tier 2: the ordinary full command converges on what the data says, not on the run history.

Each case loads a month, damages one layer the way a user or a crash would, then runs the same
selection again: the damaged layer is rebuilt with the exact rows, and an intact month is kept
without converting it again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from lake_assets.definitions import build_definitions
from lake_assets_tests.helpers import (
    MARTS,
    SERVICE_ROWS,
    ZONES,
    materialize,
    metadata,
    month_counts,
    summary_trips,
    trip_selection,
)

MONTH = "2021-03"
ROWS = 400
YELLOW = trip_selection("yellow")
PARQUET = "lake/yellow_tripdata/yellow_tripdata_2021-03.parquet"


@pytest.fixture
def loaded(http_server, settings, defs):
    """A month of yellow loaded through every layer on one instance; the instance."""
    instance = dg.DagsterInstance.ephemeral()
    http_server.publish("yellow", MONTH, ROWS)
    assert materialize(defs, YELLOW, MONTH, instance=instance).success
    return instance


def _again(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict:
    result = materialize(defs, YELLOW, MONTH, instance=instance)
    assert result.success
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == (
        set(YELLOW)
    )
    return metadata(result, "lake/yellow_tripdata")


def test_an_intact_month_is_kept_without_converting(settings, defs, loaded):
    parquet = Path(settings.lake_dir) / PARQUET
    before = parquet.stat()
    lake = _again(defs, loaded)
    assert lake["reused"] is True
    assert (parquet.stat().st_ino, parquet.stat().st_mtime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
    )
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {MONTH: ROWS}


def test_a_lost_warehouse_slice_is_loaded_again(settings, defs, loaded):
    import duckdb

    with duckdb.connect(settings.duckdb_path) as con:
        con.execute("DELETE FROM nyc_taxi.yellow_tripdata WHERE source_month = '2021-03-01'")
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {}
    assert _again(defs, loaded)["reused"] is True
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {MONTH: ROWS}


def test_a_new_duckdb_file_is_filled_again(settings, tmp_path, loaded):
    moved = dataclasses.replace(settings, duckdb_path=str(tmp_path / "elsewhere.duckdb"))
    _again(build_definitions(moved), loaded)
    assert month_counts(moved.duckdb_path, "yellow_tripdata") == {MONTH: ROWS}


def test_a_deleted_lake_file_is_converted_again(settings, defs, loaded):
    (Path(settings.lake_dir) / PARQUET).unlink()
    assert _again(defs, loaded)["reused"] is False
    assert pq.ParquetFile(Path(settings.lake_dir) / PARQUET).metadata.num_rows == ROWS
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {MONTH: ROWS}


@pytest.mark.parametrize("damage", ["truncated", "bytes flipped inside"])
def test_a_corrupt_lake_file_is_converted_again(settings, defs, loaded, damage):
    parquet = Path(settings.lake_dir) / PARQUET
    data = bytearray(parquet.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:  # the footer still reads: only the file's sha256 tells
        middle = len(data) // 2
        data[middle : middle + 16] = bytes(16)
    parquet.write_bytes(bytes(data))
    assert _again(defs, loaded)["reused"] is False
    assert pq.ParquetFile(parquet).metadata.num_rows == ROWS
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {MONTH: ROWS}


def test_a_deleted_raw_file_is_landed_and_converted_again(settings, defs, loaded):
    (Path(settings.lake_dir) / "raw/yellow_tripdata/yellow_tripdata_2021-03.csv.gz").unlink()
    assert _again(defs, loaded)["reused"] is False
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {MONTH: ROWS}


def test_a_rebuild_of_a_loaded_month_builds_its_missing_marts(http_server, settings, defs):
    """Every layer of a month was loaded but its marts never built: the whole graph for that
    month builds them, though nothing upstream changed."""
    instance = dg.DagsterInstance.ephemeral()
    for service, rows in SERVICE_ROWS.items():
        http_server.publish(service, MONTH, rows)
    assert materialize(defs, ZONES, instance=instance).success
    assert materialize(defs, trip_selection(), MONTH, instance=instance).success
    result = materialize(defs, trip_selection() + MARTS, MONTH, instance=instance)
    assert result.success
    summary = metadata(result, "marts/service_summary_monthly")
    assert {s: summary[f"{s}_trips"] for s in SERVICE_ROWS} == SERVICE_ROWS
    assert summary_trips(settings.duckdb_path, "2021-03") == SERVICE_ROWS
