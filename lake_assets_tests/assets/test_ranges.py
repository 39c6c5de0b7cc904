"""Tier 2: a backfilled range of months in one run (assets/ranges.py)."""

import io
from pathlib import Path

import duckdb

from lake_assets_tests.helpers import (
    MARTS,
    failure_message,
    lake_files,
    materialize,
    month_counts,
    trip_selection,
)
from lake_dev import generator

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
    lake = sorted(f for f in lake_files(settings) if f.startswith("lake/"))
    assert lake == ["lake/green_tripdata/green_tripdata_2020-01.parquet"]


def test_markdown_table():
    from lake_assets.assets.ranges import markdown_table

    assert (
        markdown_table(["a", "b"], [("x", 1234.5), (None, 7)])
        == io.StringIO("| a | b |\n|---|---|\n| x | 1,234.50 |\n|  | 7 |").getvalue()
    )


def test_a_range_of_months_builds_the_marts_in_one_run(http_server, settings, defs):
    import dagster as dg

    months = {"2020-01": 120, "2020-02": 80, "2020-03": 60}
    for month, rows in months.items():
        http_server.publish("green", month, rows)
        assert materialize(defs, trip_selection("green"), month).success
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(
        defs,
        MARTS,
        tags={
            "dagster/asset_partition_range_start": "2020-01",
            "dagster/asset_partition_range_end": "2020-03",
        },
        instance=instance,
    )
    assert result.success
    mart = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "marts/service_summary_monthly"
    ]
    assert sorted(e.partition for e in mart) == ["2020-01", "2020-02", "2020-03"]
    assert mart[0].materialization.metadata["months"].value == 3
    observations = instance.fetch_observations(
        dg.AssetKey(["marts", "service_summary_monthly"]), limit=10
    ).records
    by_month = {
        r.partition_key: r.asset_observation.metadata["green_trips"].value for r in observations
    }
    assert by_month == months
    (check,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.to_user_string() == "marts/service_summary_monthly"
    ]
    assert (check.passed, check.description) == (True, "all 3 months pass")

    con = duckdb.connect(settings.duckdb_path, read_only=True)
    got = con.execute(
        "SELECT strftime(source_month, '%Y-%m'), trips FROM nyc_taxi.service_summary_monthly "
        "WHERE service = 'green' ORDER BY 1"
    ).fetchall()
    con.close()
    assert dict(got) == months
