"""Tier 2: real materializations into a tmp lake and a tmp DuckDB file, served over HTTP."""

import hashlib
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from lake_assets.schemas import SERVICES, arrow_schema, contract_for
from lake_assets_tests.helpers import (
    MARTS,
    ZONES,
    failed_step,
    failure_message,
    materialize,
    metadata,
    month_counts,
    trip_selection,
)
from lake_dev import generator

ROWS = {"yellow": 3000, "green": 800, "fhv": 1500}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lake_files(settings) -> list[str]:
    root = Path(settings.lake_dir)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_three_services_two_months_exact_counts_and_one_schema(http_server, settings, defs):
    for i, month in enumerate(["2021-01", "2021-02"]):
        for service in SERVICES:
            http_server.publish(service, month, ROWS[service] + i)
    assert materialize(defs, ZONES).success
    for month in ["2021-01", "2021-02"]:
        result = materialize(defs, trip_selection(), month)
        assert result.success
        raw = metadata(result, "raw/yellow_tripdata")
        assert raw["sha256"] == _sha(http_server.trip_path("yellow", month))
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
    assert _lake_files(settings) == sorted(
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
    assert (lake["bytes"], lake["sha256"]) == (parquet.stat().st_size, _sha(parquet))
    assert [c.name for c in lake["dagster/column_schema"].columns] == contract_for(
        "green"
    ).column_names
    warehouse = metadata(result, "warehouse/green_tripdata")
    assert (warehouse["rows_loaded"], warehouse["table_rows"]) == (500, 500)
    assert warehouse["table"] == "nyc_taxi.green_tripdata"


def test_rerun_replaces_only_its_month(http_server, settings, defs):
    http_server.publish("yellow", "2021-01", 1000)
    http_server.publish("yellow", "2021-02", 1200)
    for month in ["2021-01", "2021-02"]:
        assert materialize(defs, trip_selection("yellow"), month).success
    before = month_counts(settings.duckdb_path, "yellow_tripdata")
    assert before == {"2021-01": 1000, "2021-02": 1200}
    # The same month twice: same count, never doubled.
    assert materialize(defs, trip_selection("yellow"), "2021-01").success
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == before
    # A republished month replaces its slice; the neighbour is untouched.
    http_server.publish("yellow", "2021-01", 900)
    assert materialize(defs, trip_selection("yellow"), "2021-01").success
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {
        "2021-01": 900,
        "2021-02": 1200,
    }


def test_bad_rows_fail_the_month_and_keep_the_previous_good_load(http_server, settings, defs):
    http_server.publish("yellow", "2021-01", 1000)
    assert materialize(defs, trip_selection("yellow"), "2021-01").success
    parquet = Path(settings.lake_dir) / "lake/yellow_tripdata/yellow_tripdata_2021-01.parquet"
    good_sha = _sha(parquet)
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
    assert _sha(parquet) == good_sha
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {"2021-01": 1000}
    assert not [f for f in _lake_files(settings) if f.endswith((".part", ".inprogress"))]


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


def test_truncated_download_keeps_the_landed_file(http_server, settings, defs):
    src = http_server.publish("fhv", "2020-02", 2000)
    assert materialize(defs, ["raw/fhv_tripdata"], "2020-02").success
    # A raw landing waits as a candidate until a lake step has converted it.
    landed = Path(settings.lake_dir) / "raw/fhv_tripdata/candidate/fhv_tripdata_2020-02.csv.gz"
    good = landed.read_bytes()
    data = src.read_bytes()
    http_server.put("fhv/fhv_tripdata_2020-02.csv.gz", data[: len(data) * 2 // 3])
    result = materialize(defs, ["raw/fhv_tripdata"], "2020-02")
    assert not result.success
    assert "fhv_tripdata_2020-02.csv.gz: gzip stream is truncated" in failure_message(result)
    assert landed.read_bytes() == good
    assert _lake_files(settings) == ["raw/fhv_tripdata/candidate/fhv_tripdata_2020-02.csv.gz"]


def test_http_404_fails_at_once_with_the_url(http_server, settings, defs):
    result = materialize(defs, trip_selection("green"), "2019-05")
    assert not result.success
    assert failed_step(result) == "raw__green_tripdata"
    url = f"{http_server.url}/green/green_tripdata_2019-05.csv.gz"
    assert f"{url}: HTTP 404 (not published there)" in failure_message(result)
    assert http_server.behaviour.hits["/green/green_tripdata_2019-05.csv.gz"] == 1  # no retries
    assert _lake_files(settings) == []


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


def test_transient_errors_are_retried(http_server, settings, defs):
    http_server.publish("yellow", "2019-02", 10)
    http_server.behaviour.status["/yellow/yellow_tripdata_2019-02.csv.gz"] = [503, 503]
    result = materialize(defs, ["raw/yellow_tripdata"], "2019-02")
    assert result.success
    assert http_server.behaviour.hits["/yellow/yellow_tripdata_2019-02.csv.gz"] == 3


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


RANGE_TAGS = {
    "dagster/asset_partition_range_start": "2020-01",
    "dagster/asset_partition_range_end": "2020-03",
}


def test_a_backfilled_range_converts_and_loads_each_month_in_one_run(http_server, settings, defs):
    import dagster as dg

    months = {"2020-01": 300, "2020-02": 200, "2020-03": 100}
    for month, rows in months.items():
        http_server.publish("green", month, rows)
        assert materialize(defs, ["raw/green_tripdata"], month).success
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(
        defs,
        trip_selection("green", layers=("lake", "warehouse")),
        tags=RANGE_TAGS,
        instance=instance,
    )
    assert result.success
    assert month_counts(settings.duckdb_path, "green_tripdata") == months
    for key in ("lake/green_tripdata", "warehouse/green_tripdata"):
        events = [
            e
            for e in result.get_asset_materialization_events()
            if e.asset_key.to_user_string() == key
        ]
        assert sorted(e.partition for e in events) == list(months)
        range_metadata = events[0].materialization.metadata
        assert range_metadata["rows_in_run"].value == 600
        assert "dagster/row_count" not in range_metadata
        # Each month's own figures are in its observation.
        observations = instance.fetch_observations(dg.AssetKey(key.split("/")), limit=10).records
        assert {
            r.partition_key: r.asset_observation.metadata["dagster/row_count"].value
            for r in observations
        } == months
    checks = {
        (e.asset_key.to_user_string(), e.check_name): (e.passed, e.description)
        for e in result.get_asset_check_evaluations()
    }
    assert checks[("lake/green_tripdata", "rows_accounted_for")] == (True, "all 3 months pass")
    assert checks[("warehouse/green_tripdata", "slice_matches_lake")] == (True, "all 3 months pass")


def test_a_range_failing_midway_records_the_months_before_it(http_server, settings, defs):
    import dagster as dg

    for month in ("2020-01", "2020-02", "2020-03"):
        http_server.publish("green", month, 100)
        assert materialize(defs, ["raw/green_tripdata"], month).success
    # February's landed file has a row cut mid-line.
    raw = Path(settings.lake_dir) / "raw/green_tripdata/candidate/green_tripdata_2020-02.csv.gz"
    raw.write_bytes(generator.gzip_bytes(generator.gzip_text(raw) + "2,2020-0"))
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(defs, ["lake/green_tripdata"], tags=RANGE_TAGS, instance=instance)
    assert not result.success
    assert "green_tripdata_2020-02.csv.gz: line 102: expected 20 fields, found 2" in (
        failure_message(result)
    )
    key = dg.AssetKey(["lake", "green_tripdata"])
    assert instance.get_materialized_partitions(key) == {"2020-01"}
    lake = sorted(f for f in _lake_files(settings) if f.startswith("lake/"))
    assert lake == ["lake/green_tripdata/green_tripdata_2020-01.parquet"]


def test_demo_summary_reads_through_the_resources(http_server, settings, defs):
    from lake_dev import demo

    http_server.publish("green", "2021-01", 250)
    assert materialize(defs, ZONES).success
    assert materialize(defs, trip_selection("green") + MARTS, "2021-01").success
    text = demo.summary(settings)
    assert text.splitlines()[0] == f"warehouse {settings.duckdb_path}"
    assert "  nyc_taxi.green_tripdata      2021-01        250" in text
    assert "  nyc_taxi.taxi_zones          -              265" in text
    assert "  lake/green_tripdata/green_tripdata_2021-01.parquet  (" in text
    top = demo.top_zones(settings, "2021-01")
    assert "  green       250 trips, revenue " in top


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
    assert not [f for f in _lake_files(settings) if f.startswith("lake/")]
    assert not list((Path(settings.lake_dir) / ".staging").iterdir())
