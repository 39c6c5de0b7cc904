"""The demo's summary reads through the resources; its progress lines say what each step wrote."""

import re

import dagster as dg

from lake_assets_tests.helpers import (
    MARTS,
    ZONES,
    materialize,
    trip_selection,
)


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


def test_demo_progress_names_each_step_with_what_it_wrote(http_server, settings, defs):
    from lake_dev import demo

    raw_bytes = http_server.publish("green", "2021-01", 250).stat().st_size
    with dg.instance_for_test() as instance:
        result = materialize(defs, trip_selection("green"), "2021-01", instance=instance)
        assert result.success
        entries = instance.all_logs(
            result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        lines = {
            e.dagster_event.asset_key.to_user_string(): demo.step_line(e).split() for e in entries
        }
    assert lines["raw/green_tripdata"][:4] == [
        "raw/green_tripdata",
        "2021-01",
        f"{raw_bytes:,}",
        "bytes",
    ]
    assert lines["lake/green_tripdata"][:4] == ["lake/green_tripdata", "2021-01", "250", "rows"]
    assert lines["warehouse/green_tripdata"][:4] == [
        "warehouse/green_tripdata",
        "2021-01",
        "250",
        "rows",
    ]
    # Every step's own time closes its line.
    assert all(re.fullmatch(r"\d+\.\ds", words[-1]) for words in lines.values()), lines
