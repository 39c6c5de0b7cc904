"""Tier 2: recovery. A re-run after a failure does the work or fails again; a bad file never
replaces a good one in any layer; errors a retry cannot fix fail at once."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from lake_assets.definitions import build_definitions
from lake_assets_tests.helpers import failure_message, materialize, month_counts, trip_selection
from lake_dev import generator

GREEN = trip_selection("green")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _steps(result, event_type: str) -> set[str]:
    return {e.step_key for e in result.all_events if e.event_type_value == event_type}


def _republish(http_server, service: str, month: str, data: bytes) -> None:
    src = http_server.put(f"{service}/{service}_tripdata_{month}.csv.gz", data)
    later = time.time() + 120
    os.utime(src, (later, later))  # a new Last-Modified: the source changed


def _meta(result, key: str) -> dict:
    for e in result.get_asset_materialization_events():
        if e.asset_key.to_user_string() == key:
            return {k: v.value for k, v in e.materialization.metadata.items()}
    raise KeyError(key)


def _bad_row_file(month: str) -> bytes:
    """A green month whose third data row (line 4) has text in passenger_count."""
    import datetime

    y, m = (int(x) for x in month.split("-"))
    text = generator.gzip_text(
        generator.write_month("green", datetime.date(y, m, 1), 40, Path(f"/tmp/_g{os.getpid()}.gz"))
    )
    lines = text.splitlines()
    fields = lines[3].split(",")
    fields[generator.GREEN_HEADER.index("passenger_count")] = "two"
    lines[3] = ",".join(fields)
    return generator.gzip_bytes("\n".join(lines) + "\n")


def test_a_bad_file_keeps_every_layer_and_a_rerun_fails_again_until_the_source_is_fixed(
    http_server, settings, defs
):
    instance = dg.DagsterInstance.ephemeral()
    lake = Path(settings.lake_dir)
    http_server.publish("green", "2020-03", 300)
    assert materialize(defs, GREEN, "2020-03", instance=instance).success
    raw_final = lake / "raw/green_tripdata/green_tripdata_2020-03.csv.gz"
    candidate = lake / "raw/green_tripdata/candidate/green_tripdata_2020-03.csv.gz"
    parquet = lake / "lake/green_tripdata/green_tripdata_2020-03.parquet"
    good_raw, good_parquet = _sha(raw_final), _sha(parquet)
    assert not candidate.exists()

    _republish(http_server, "green", "2020-03", _bad_row_file("2020-03"))
    failed = materialize(defs, GREEN, "2020-03", instance=instance)
    assert not failed.success
    assert "line 4, column 'passenger_count': cannot parse 'two' as BIGINT" in (
        failure_message(failed)
    )
    # Every layer keeps the good month; the bad file waits as a candidate.
    assert _sha(raw_final) == good_raw and _sha(parquet) == good_parquet
    assert candidate.exists()
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2020-03": 300}

    # The same command again: the source answers 304, and the run still fails, not green.
    again = materialize(defs, GREEN, "2020-03", instance=instance)
    assert not again.success
    method, _, headers = http_server.behaviour.requests[-1]
    assert method == "GET" and "If-Modified-Since" in headers
    assert "lake__green_tripdata" in _steps(again, "STEP_FAILURE")
    assert "cannot parse 'two' as BIGINT" in failure_message(again)
    assert _sha(raw_final) == good_raw and _sha(parquet) == good_parquet

    # The source is fixed: the run converges, the candidate is promoted.
    fixed = http_server.publish("green", "2020-03", 350)
    later = time.time() + 240
    os.utime(fixed, (later, later))
    done = materialize(defs, GREEN, "2020-03", instance=instance)
    assert done.success
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2020-03": 350}
    assert pq.ParquetFile(parquet).metadata.num_rows == 350
    assert not candidate.exists() and _sha(raw_final) == _sha(fixed)
    raw_sha = _meta(done, "raw/green_tripdata")["sha256"]
    assert _meta(done, "lake/green_tripdata")["raw_sha256"] == raw_sha
    assert _meta(done, "warehouse/green_tripdata")["raw_sha256"] == raw_sha
    footer = pq.ParquetFile(parquet).metadata.metadata
    assert footer[b"lake_assets.raw_sha256"] == raw_sha.encode()


def test_a_header_only_month_keeps_the_good_lake_file(http_server, settings, defs):
    instance = dg.DagsterInstance.ephemeral()
    http_server.publish("green", "2020-04", 250)
    assert materialize(defs, GREEN, "2020-04", instance=instance).success
    parquet = Path(settings.lake_dir) / "lake/green_tripdata/green_tripdata_2020-04.parquet"
    _republish(
        http_server,
        "green",
        "2020-04",
        generator.gzip_bytes(",".join(generator.GREEN_HEADER) + "\n"),
    )
    result = materialize(defs, GREEN, "2020-04", instance=instance)
    assert not result.success
    assert "blocking check month_not_empty failed: the month has no rows" in (
        failure_message(result)
    )
    assert pq.ParquetFile(parquet).metadata.num_rows == 250
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2020-04": 250}
    (check,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "month_not_empty"
    ]
    assert (check.passed, check.description) == (False, "the month has no rows")


def test_a_rerun_after_a_lost_warehouse_step_rebuilds_it_from_the_landed_file(
    http_server, settings, defs
):
    """What a kill -9 during the warehouse step leaves: raw and lake of the new file, the
    warehouse of the old one. The same command again must load the new month, not skip it."""
    instance = dg.DagsterInstance.ephemeral()
    http_server.publish("yellow", "2021-02", 100)
    assert materialize(defs, trip_selection("yellow"), "2021-02", instance=instance).success
    src = http_server.publish("yellow", "2021-02", 3000)
    later = time.time() + 120
    os.utime(src, (later, later))
    partial = trip_selection("yellow", layers=("raw", "lake"))
    assert materialize(defs, partial, "2021-02", instance=instance).success
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {"2021-02": 100}

    rerun = materialize(defs, trip_selection("yellow"), "2021-02", instance=instance)
    assert rerun.success
    assert not _steps(rerun, "STEP_SKIPPED")
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {"2021-02": 3000}
    raw = _meta(rerun, "raw/yellow_tripdata")
    assert raw["rebuild_of"] == "warehouse/yellow_tripdata"
    assert _meta(rerun, "warehouse/yellow_tripdata")["raw_sha256"] == raw["sha256"]
    # Now the whole chain is built from the landed file: the next run skips.
    quiet = materialize(defs, trip_selection("yellow"), "2021-02", instance=instance)
    assert quiet.success
    assert _steps(quiet, "STEP_SKIPPED") == {"lake__yellow_tripdata", "warehouse__yellow_tripdata"}


def test_lake_paths_do_not_depend_on_the_source_url(http_server, settings, tmp_path):
    """The raw file is named by what its bytes are: a template without a suffix lands
    .csv.gz, and a lake-only rebuild after switching templates finds it."""
    src = http_server.publish("fhv", "2021-03", 120)
    http_server.put("bare/fhv-2021-03", src.read_bytes())
    bare = dataclasses.replace(
        settings, tlc_source_url=f"{http_server.url}/bare/{{service}}-{{year}}-{{month}}"
    )
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(
        build_definitions(bare), trip_selection("fhv"), "2021-03", instance=instance
    ).success
    assert (Path(settings.lake_dir) / "raw/fhv_tripdata/fhv_tripdata_2021-03.csv.gz").exists()
    rebuilt = materialize(
        build_definitions(settings), ["lake/fhv_tripdata", "warehouse/fhv_tripdata"], "2021-03"
    )
    assert rebuilt.success
    assert month_counts(settings.duckdb_path, "fhv_tripdata") == {"2021-03": 120}


def test_a_lake_folder_that_cannot_exist_fails_at_once(http_server, settings, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the lake's parent folder should be")
    broken = dataclasses.replace(settings, lake_dir=str(blocker / "lake"))
    http_server.publish("green", "2021-01", 10)
    result = materialize(build_definitions(broken), ["raw/green_tripdata"], "2021-01")
    assert not result.success
    assert not _steps(result, "STEP_UP_FOR_RETRY")
    assert "NotADirectoryError" in failure_message(result)


def test_transient_then_success_converges_with_exact_counts(http_server, settings, defs):
    http_server.publish("green", "2021-02", 77)
    http_server.behaviour.status["/green/green_tripdata_2021-02.csv.gz"] = [503]
    result = materialize(defs, GREEN, "2021-02")
    assert result.success
    assert "raw__green_tripdata" in _steps(result, "STEP_UP_FOR_RETRY")
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2021-02": 77}


def test_an_html_page_fails_at_once_and_keeps_the_month(http_server, settings, defs):
    http_server.publish("green", "2021-05", 60)
    assert materialize(defs, GREEN, "2021-05").success
    http_server.behaviour.faults["/green/green_tripdata_2021-05.csv.gz"] = "html"
    result = materialize(defs, GREEN, "2021-05")
    assert not result.success
    assert not _steps(result, "STEP_UP_FOR_RETRY")
    assert "with an HTML page (Content-Type text/html)" in failure_message(result)
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2021-05": 60}


def test_stale_scratch_is_removed_by_the_next_step(http_server, settings, defs):
    from lake_assets import scratch

    staging = Path(settings.lake_dir) / ".staging"
    stale = staging / f"{scratch.PREFIX}killed"
    stale.mkdir(parents=True)
    (stale / scratch.LOCK_NAME).touch()  # its owner is gone: nobody holds the lock
    (stale / "download").write_bytes(b"x" * 1000)
    (stale / "out.parquet.inprogress").write_bytes(b"x")
    (stale / "duckdb_spill").mkdir()
    http_server.publish("green", "2021-06", 20)
    assert materialize(defs, GREEN, "2021-06").success
    assert not stale.exists()
    assert list(staging.iterdir()) == []
