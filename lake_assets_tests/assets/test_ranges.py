"""Tier 2: a backfilled range of months in one run (assets/ranges.py)."""

import io
from pathlib import Path

import dagster as dg
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
        # Each month's materialization keeps its own figures, beside the run's summary.
        by_month = {e.partition: e.materialization.metadata for e in events}
        assert {m: md["dagster/row_count"].value for m, md in by_month.items()} == months
        for md in by_month.values():
            assert md["rows_in_run"].value == 600
            assert md["months"].value == 3
        recorded = instance.fetch_materializations(dg.AssetKey(key.split("/")), limit=10).records
        assert sorted(r.partition_key for r in recorded) == list(months)  # one each, no copies
    lake_months = {
        e.partition: e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "lake/green_tripdata"
    }
    assert {m: md["bytes"].value > 0 for m, md in lake_months.items()} == dict.fromkeys(
        months, True
    )
    assert all("dagster/column_schema" in md for md in lake_months.values())
    # Every check result is filed under its own month, one per month and check.
    checks = {
        (e.asset_key.to_user_string(), e.check_name, e.partition): (e.passed, e.description)
        for e in result.get_asset_check_evaluations()
    }
    for month, rows in months.items():
        assert checks[("lake/green_tripdata", "rows_accounted_for", month)][0] is True
        assert checks[("warehouse/green_tripdata", "slice_matches_lake", month)] == (
            True,
            f"{rows} rows for {month}-01",
        )
    assert None not in {partition for _, _, partition in checks}
    check_key = dg.AssetCheckKey(dg.AssetKey(["lake", "green_tripdata"]), "rows_accounted_for")
    stored = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=10)
    assert sorted(r.event.asset_check_evaluation.partition for r in stored) == list(months)
    # ... and each is linked to its own month's materialization by this run.
    lake_key = dg.AssetKey(["lake", "green_tripdata"])
    materialized = {
        r.partition_key: r.storage_id
        for r in instance.fetch_materializations(lake_key, limit=10).records
    }
    targets = {
        r.event.asset_check_evaluation.partition: (
            r.event.asset_check_evaluation.target_materialization_data
        )
        for r in stored
    }
    assert {m: t.storage_id for m, t in targets.items()} == materialized
    assert {t.run_id for t in targets.values()} == {result.run_id}


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
    # January's checks are recorded on January; February, which failed, has none.
    logged = [r.dagster_event for r in instance.all_logs(result.run_id) if r.dagster_event]
    filed = {
        (e.asset_check_evaluation_data.check_name, e.asset_check_evaluation_data.partition)
        for e in logged
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert ("rows_accounted_for", "2020-01") in filed
    assert {partition for _, partition in filed} == {"2020-01"}
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
    by_month = {e.partition: e.materialization.metadata["green_trips"].value for e in mart}
    assert by_month == months
    mart_checks = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.to_user_string() == "marts/service_summary_monthly"
    ]
    assert sorted(e.partition for e in mart_checks) == list(months)
    assert all(e.passed for e in mart_checks)

    con = duckdb.connect(settings.duckdb_path, read_only=True)
    got = con.execute(
        "SELECT strftime(source_month, '%Y-%m'), trips FROM nyc_taxi.service_summary_monthly "
        "WHERE service = 'green' ORDER BY 1"
    ).fetchall()
    con.close()
    assert dict(got) == months


def test_a_single_month_files_its_check_results_under_that_month(http_server, defs):
    http_server.publish("green", "2020-02", 150)
    result = materialize(defs, trip_selection("green"), "2020-02")
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    # Every check the two assets declare, once each.
    declared = {
        (k.asset_key.to_user_string(), k.name)
        for key in ("lake/green_tripdata", "warehouse/green_tripdata")
        for k in defs.get_assets_def(dg.AssetKey(key.split("/"))).check_keys
    }
    assert sorted((e.asset_key.to_user_string(), e.check_name) for e in evaluations) == sorted(
        declared
    )
    assert {e.partition for e in evaluations} == {"2020-02"}
