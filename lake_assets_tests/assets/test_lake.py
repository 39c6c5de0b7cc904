"""Tier 2: lake/* materialized for real: exact counts, one schema, bad rows, quarantine, the
checks, and a bad file that never replaces a good one.
"""

from __future__ import annotations

import dataclasses
import os
import time
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from lake_assets.definitions import build_definitions
from lake_assets.schemas import SERVICES, arrow_schema, contract_for
from lake_assets_tests.helpers import (
    ZONES,
    failed_step,
    failure_message,
    lake_files,
    load_every_service,
    materialize,
    metadata,
    month_counts,
    sha256_of,
    steps_with,
    trip_selection,
)
from lake_dev import generator

ROWS = {"yellow": 3000, "green": 800, "fhv": 1500}


def _checks(result) -> dict[tuple[str, str], object]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


GREEN = trip_selection("green")


def _republish(http_server, service: str, month: str, data: bytes) -> None:
    src = http_server.put(f"{service}/{service}_tripdata_{month}.csv.gz", data)
    later = time.time() + 120
    os.utime(src, (later, later))  # a new Last-Modified: the source changed


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


def test_three_services_two_months_exact_counts_and_one_schema(http_server, settings, defs):
    for i, month in enumerate(["2021-01", "2021-02"]):
        for service in SERVICES:
            http_server.publish(service, month, ROWS[service] + i)
    assert materialize(defs, ZONES).success
    for month in ["2021-01", "2021-02"]:
        result = materialize(defs, trip_selection(), month)
        assert result.success
        raw = metadata(result, "raw/yellow_tripdata")
        assert raw["sha256"] == sha256_of(http_server.trip_path("yellow", month))
        assert raw["bytes"] == http_server.trip_path("yellow", month).stat().st_size
        assert raw["source_url"] == f"{http_server.url}/yellow/yellow_tripdata_{month}.csv.gz"
    for i, month in enumerate(["2021-01", "2021-02"]):
        for service in SERVICES:
            assert (
                month_counts(settings.duckdb_path, f"{service}_tripdata")[month]
                == ROWS[service] + i
            )
    for service in SERVICES:
        schemas = {
            pq.read_schema(
                Path(settings.lake_dir) / f"lake/{service}_tripdata/{service}_tripdata_{m}.parquet"
            ).remove_metadata()
            for m in ["2021-01", "2021-02"]
        }
        assert schemas == {arrow_schema(contract_for(service))}
    assert duckdb.connect(settings.duckdb_path, read_only=True).execute(
        "SELECT count(*), count(DISTINCT location_id) FROM nyc_taxi.taxi_zones"
    ).fetchone() == (265, 265)
    assert lake_files(settings) == sorted(
        [
            "raw/taxi_zones/taxi_zone_lookup.csv",
            "lake/taxi_zones/taxi_zones.parquet",
            *(
                f"{layer}/{s}_tripdata/{s}_tripdata_{m}.{ext}"
                for s in SERVICES
                for m in ["2021-01", "2021-02"]
                for layer, ext in (("raw", "csv.gz"), ("lake", "parquet"))
            ),
        ]
    )


def test_materializations_report_rows_bytes_uri_checksum(http_server, settings, defs):
    http_server.publish("green", "2019-01", 500)
    result = materialize(defs, trip_selection("green"), "2019-01")
    assert result.success
    lake = metadata(result, "lake/green_tripdata")
    parquet = Path(settings.lake_dir) / "lake/green_tripdata/green_tripdata_2019-01.parquet"
    assert lake["dagster/row_count"] == lake["rows_read"] == 500
    assert lake["rows_rejected"] == 0
    assert lake["uri"] == parquet.resolve().as_uri()
    assert (lake["bytes"], lake["sha256"]) == (parquet.stat().st_size, sha256_of(parquet))
    assert [c.name for c in lake["dagster/column_schema"].columns] == contract_for(
        "green"
    ).column_names
    warehouse = metadata(result, "warehouse/green_tripdata")
    assert (warehouse["rows_loaded"], warehouse["table_rows"]) == (500, 500)
    assert warehouse["table"] == "nyc_taxi.green_tripdata"


def test_bad_rows_fail_the_month_and_keep_the_previous_good_load(http_server, settings, defs):
    http_server.publish("yellow", "2021-01", 1000)
    assert materialize(defs, trip_selection("yellow"), "2021-01").success
    parquet = Path(settings.lake_dir) / "lake/yellow_tripdata/yellow_tripdata_2021-01.parquet"
    good_sha = sha256_of(parquet)
    # Republish the month with its last row cut off mid-line, like the real 2021-01 sample.
    text = generator.gzip_text(http_server.trip_path("yellow", "2021-01"))
    http_server.put(
        "yellow/yellow_tripdata_2021-01.csv.gz", generator.gzip_bytes(text + "1,2021-0")
    )
    result = materialize(defs, trip_selection("yellow"), "2021-01")
    assert not result.success
    assert failed_step(result) == "lake__yellow_tripdata"
    message = failure_message(result)
    assert "yellow_tripdata_2021-01.csv.gz: line 1002: expected 18 fields, found 2: '1,2021-0'" in (
        message
    )
    assert sha256_of(parquet) == good_sha
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {"2021-01": 1000}
    assert not [f for f in lake_files(settings) if f.endswith((".part", ".inprogress"))]


def test_quarantine_diverts_bad_rows_to_a_rejects_file(http_server, settings, tmp_path):
    from dataclasses import replace

    from lake_assets.definitions import build_definitions

    defs = build_definitions(replace(settings, bad_rows="quarantine"))
    src = http_server.publish("yellow", "2021-03", 400)
    text = generator.gzip_text(src).replace(",1,N,", ",1.5,N,", 1)
    http_server.put(
        "yellow/yellow_tripdata_2021-03.csv.gz", generator.gzip_bytes(text + "1,2021-0")
    )
    result = materialize(defs, trip_selection("yellow"), "2021-03")
    assert result.success
    lake = metadata(result, "lake/yellow_tripdata")
    assert (lake["rows_read"], lake["dagster/row_count"], lake["rows_rejected"]) == (401, 399, 2)
    rejects = Path(settings.lake_dir) / "lake/yellow_tripdata/yellow_tripdata_2021-03.rejects.csv"
    assert lake["rejects_uri"] == rejects.resolve().as_uri()
    lines = rejects.read_text().splitlines()
    assert lines[0] == "line,column,value,error,raw_line"
    assert len(lines) == 3 and lines[2].startswith("402,,")
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {"2021-03": 399}
    # A clean re-publish removes the stale rejects file.
    http_server.publish("yellow", "2021-03", 400)
    assert materialize(defs, trip_selection("yellow"), "2021-03").success
    assert not rejects.exists()


def test_unknown_column_fails_naming_it(http_server, settings, defs):
    bad = ",".join(generator.GREEN_HEADER) + ",surge_fee\n"
    http_server.put("green/green_tripdata_2020-01.csv.gz", generator.gzip_bytes(bad))
    result = materialize(defs, trip_selection("green"), "2020-01")
    assert not result.success
    assert "line 1, column 21: unknown column 'surge_fee'" in failure_message(result)
    assert not (Path(settings.lake_dir) / "lake").exists()


def test_unparseable_value_fails_naming_line_column_value(http_server, settings, defs):
    src = http_server.publish("fhv", "2019-03", 50)
    lines = generator.gzip_text(src).split("\n")
    fields = lines[7].split(",")
    fields[1] = "2019-03-32 25:00:00"
    lines[7] = ",".join(fields)
    http_server.put("fhv/fhv_tripdata_2019-03.csv.gz", generator.gzip_bytes("\n".join(lines)))
    result = materialize(defs, trip_selection("fhv"), "2019-03")
    assert not result.success
    assert (
        "fhv_tripdata_2019-03.csv.gz: line 8, column 'pickup_datetime': "
        "cannot parse '2019-03-32 25:00:00' as TIMESTAMP"
    ) in failure_message(result)


@pytest.mark.parametrize("service", SERVICES)
def test_real_samples_through_the_assets(samples, http_server, settings, defs, service):
    name = {"yellow": "yellow_tripdata_2019-01", "green": "green_tripdata_2019-01"}.get(
        service, "fhv_tripdata_2019-01"
    )
    http_server.put(
        f"{service}/{service}_tripdata_2019-01.csv.gz", samples / f"{name}.sample.csv.gz"
    )
    assert materialize(defs, trip_selection(service), "2019-01").success
    assert month_counts(settings.duckdb_path, f"{service}_tripdata") == {"2019-01": 100}


def test_the_tlc_parquet_source_end_to_end(http_server, settings):
    from dataclasses import replace

    from lake_assets.definitions import build_definitions

    tlc = replace(
        settings,
        tlc_source="tlc",
        tlc_source_url=f"{http_server.url}/trip-data/{{service}}_tripdata_{{year}}-{{month}}.parquet",
    )
    defs = build_definitions(tlc)
    for service, drift, rows in (
        ("yellow", "2025", 700),
        ("green", "2022", 300),
        ("fhv", "2023", 500),
    ):
        generator.write_month_parquet(
            service,
            date(2021, 6, 1),
            rows,
            http_server.root / "trip-data" / f"{service}_tripdata_2021-06.parquet",
            drift,
        )
    result = materialize(defs, trip_selection(), "2021-06")
    assert result.success
    for service, rows in (("yellow", 700), ("green", 300), ("fhv", 500)):
        assert month_counts(settings.duckdb_path, f"{service}_tripdata") == {"2021-06": rows}
        landed = (
            Path(settings.lake_dir) / f"raw/{service}_tripdata/{service}_tripdata_2021-06.parquet"
        )
        assert (
            landed.read_bytes()
            == (http_server.root / "trip-data" / f"{service}_tripdata_2021-06.parquet").read_bytes()
        )
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
    }
    assert checks[("lake/yellow_tripdata", "rows_accounted_for")]
    assert checks[("lake/fhv_tripdata", "schema_matches_contract")]


def test_a_landed_gzip_cut_short_fails_the_lake_step_naming_it(http_server, settings, defs):
    """The raw step refuses cut downloads; a file cut in the lake later is refused too."""
    http_server.publish("green", "2020-05", 2000)
    assert materialize(defs, ["raw/green_tripdata"], "2020-05").success
    raw = Path(settings.lake_dir) / "raw/green_tripdata/candidate/green_tripdata_2020-05.csv.gz"
    raw.write_bytes(raw.read_bytes()[: raw.stat().st_size // 2])
    result = materialize(defs, ["lake/green_tripdata"], "2020-05")
    assert not result.success
    message = failure_message(result)
    assert f"{raw.as_uri()}: gzip stream is cut or corrupt (" in message
    assert not [f for f in lake_files(settings) if f.startswith("lake/")]
    assert not list((Path(settings.lake_dir) / ".staging").iterdir())


def test_good_month_passes_every_check(http_server, settings, defs):
    result = load_every_service(http_server, defs, "2021-01")
    checks = _checks(result)
    assert len(checks) == 8 + 8 + 6 + 3 + 2
    blocking = {k: e for k, e in checks.items() if e.severity.value == "ERROR"}
    assert all(e.passed for e in blocking.values()), [
        k for k, e in blocking.items() if not e.passed
    ]
    parity = checks[("lake/yellow_tripdata", "rows_accounted_for")].metadata
    assert (parity["rows_in_source"].value, parity["rows_written"].value) == (700, 700)
    slice_check = checks[("warehouse/fhv_tripdata", "slice_matches_lake")].metadata
    assert (slice_check["warehouse_rows"].value, slice_check["lake_rows"].value) == (400, 400)
    lake = metadata(result, "lake/yellow_tripdata")
    for figure in ("pickups_in_month_share", "passenger_count_null_rate", "negative_total_share"):
        assert isinstance(lake[figure], float)


def test_empty_month_blocks_the_warehouse_and_keeps_its_load(http_server, settings, defs):
    http_server.publish("green", "2020-04", 250)
    assert materialize(defs, trip_selection("green"), "2020-04").success
    header_only = ",".join(generator.GREEN_HEADER) + "\n"
    http_server.put("green/green_tripdata_2020-04.csv.gz", generator.gzip_bytes(header_only))
    result = materialize(defs, trip_selection("green"), "2020-04")
    assert not result.success
    check = _checks(result)[("lake/green_tripdata", "month_not_empty")]
    assert (check.passed, check.severity.value, check.description) == (
        False,
        "ERROR",
        "the month has no rows",
    )
    assert "warehouse__green_tripdata" not in steps_with(result, "STEP_START")
    assert "month_not_empty" in failure_message(result)
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2020-04": 250}


def test_stray_dates_warn_with_figures_and_still_load(http_server, settings, defs):
    src = http_server.publish("yellow", "2020-06", 1000)
    lines = generator.gzip_text(src).split("\n")
    for i in range(1, 51):  # 5% of pickups in 2088, as some real files have
        fields = lines[i].split(",")
        fields[1] = "2088" + fields[1][4:]
        lines[i] = ",".join(fields)
    http_server.put("yellow/yellow_tripdata_2020-06.csv.gz", generator.gzip_bytes("\n".join(lines)))
    result = materialize(defs, trip_selection("yellow"), "2020-06")
    assert result.success
    check = _checks(result)[("lake/yellow_tripdata", "pickups_in_month")]
    assert (check.passed, check.severity.value) == (False, "WARN")
    # The 50 made here, plus the generator's own strays, counted from the file itself.
    pickups = [line.split(",")[1] for line in lines[1:] if line]
    assert check.metadata["outside_month"].value == sum(
        not p.startswith("2020-06") for p in pickups
    )
    assert check.metadata["max_pickup"].value.startswith("2088-06")
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {"2020-06": 1000}


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
    good_raw, good_parquet = sha256_of(raw_final), sha256_of(parquet)
    assert not candidate.exists()

    _republish(http_server, "green", "2020-03", _bad_row_file("2020-03"))
    failed = materialize(defs, GREEN, "2020-03", instance=instance)
    assert not failed.success
    assert "line 4, column 'passenger_count': cannot parse 'two' as BIGINT" in (
        failure_message(failed)
    )
    # Every layer keeps the good month; the bad file is moved aside under its sha256.
    assert sha256_of(raw_final) == good_raw and sha256_of(parquet) == good_parquet
    assert not candidate.exists()
    bad_sha = metadata(failed, "raw/green_tripdata")["sha256"]
    kept = lake / f"raw/green_tripdata/rejected/{bad_sha}/green_tripdata_2020-03.csv.gz"
    assert sha256_of(kept) == bad_sha
    failure = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert failure.event_specific_data.user_failure_data.metadata[
        "rejected_candidate_uri"
    ].value == (kept.resolve().as_uri())
    assert f"The candidate was moved aside to {kept.resolve().as_uri()}" in (
        failure_message(failed)
    )
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2020-03": 300}

    # The same command again: the raw step refuses the same bytes at once, no retries.
    again = materialize(defs, GREEN, "2020-03", instance=instance)
    assert not again.success
    assert steps_with(again, "STEP_FAILURE") == {"raw__green_tripdata"}
    assert not steps_with(again, "STEP_UP_FOR_RETRY")
    refused = failure_message(again)
    assert f"the source still serves the file rejected by run {failed.run_id}: " in refused
    assert "line 4, column 'passenger_count': cannot parse 'two' as BIGINT" in refused
    assert sha256_of(raw_final) == good_raw and sha256_of(parquet) == good_parquet

    # A run of the derived layers alone rebuilds from the good file and says what waits.
    derived = materialize(defs, GREEN[1:], "2020-03", instance=instance)
    assert derived.success
    assert metadata(derived, "lake/green_tripdata")["rejected_candidate_uri"] == (
        kept.resolve().as_uri()
    )
    assert metadata(derived, "lake/green_tripdata")["raw_sha256"] == good_raw
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2020-03": 300}

    # The source is fixed: the run converges, the candidate is promoted.
    fixed = http_server.publish("green", "2020-03", 350)
    later = time.time() + 240
    os.utime(fixed, (later, later))
    done = materialize(defs, GREEN, "2020-03", instance=instance)
    assert done.success
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2020-03": 350}
    assert pq.ParquetFile(parquet).metadata.num_rows == 350
    assert not candidate.exists() and sha256_of(raw_final) == sha256_of(fixed)
    assert not (lake / "raw/green_tripdata/rejected/green_tripdata_2020-03.json").exists()
    assert "rejected_candidate_uri" not in metadata(done, "lake/green_tripdata")
    raw_sha = metadata(done, "raw/green_tripdata")["sha256"]
    assert metadata(done, "lake/green_tripdata")["raw_sha256"] == raw_sha
    assert metadata(done, "warehouse/green_tripdata")["raw_sha256"] == raw_sha
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
