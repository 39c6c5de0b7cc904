"""make bench-course's plan: the course's months at their counts, and the backfill it launches
covers every asset of the definitions with the months the course has (no timings asserted)."""

from datetime import date

import dagster as dg
import pytest

from lake_assets.definitions import build_definitions
from lake_assets.settings import Settings
from lake_dev import course, generator


def test_the_plan_is_the_course_at_its_totals_month_by_month():
    months = course.plan(1.0)
    assert {s: sum(c.values()) for s, c in months.items()} == {
        "yellow": 109_047_518,
        "green": 7_778_101,
        "fhv": 43_244_696,
    }
    assert sum(map(len, months.values())) == 60
    assert list(months["fhv"]) == [date(2019, m, 1) for m in range(1, 13)]
    assert list(months["yellow"])[0] == date(2019, 1, 1)
    assert list(months["yellow"])[-1] == date(2020, 12, 1)
    # The Parquet counts' shape, scaled by 109,047,518 / 109,247,536 and rounded.
    assert months["yellow"][date(2019, 1, 1)] == 7_682_526
    assert months["fhv"][date(2019, 1, 1)] == 23_150_188
    assert months["yellow"][date(2020, 4, 1)] == 237_637


@pytest.mark.parametrize(
    "scale, totals",
    [
        (0.1, {"yellow": 10_904_752, "green": 777_810, "fhv": 4_324_470}),
        # So small that some months would be empty: every month still has a row.
        (1e-6, {"yellow": 111, "green": 24, "fhv": 43}),
    ],
)
def test_a_scaled_plan_keeps_every_month(scale, totals):
    months = course.plan(scale)
    assert {s: sum(c.values()) for s, c in months.items()} == totals
    assert min(min(c.values()) for c in months.values()) >= 1
    assert sum(map(len, months.values())) == 60


def test_the_backfill_covers_every_asset_once_with_the_courses_months(tmp_path):
    settings = Settings(
        start_month=course.FIRST,
        end_month=course.LAST,
        lake_dir=str(tmp_path / "lake"),
        duckdb_path=str(tmp_path / "warehouse.duckdb"),
    )
    graph = build_definitions(settings).resolve_asset_graph()
    chosen = {
        dg.AssetKey(s["assetKey"]["path"]): s.get("partitions", {}).get("range")
        for s in course.backfill_selection(course.plan(1.0))
    }
    assert set(chosen) == set(graph.get_all_asset_keys())
    for key, span in chosen.items():
        partitions = graph.get(key).partitions_def
        if partitions is None:
            assert span is None, key
            continue
        service = key.path[-1].removesuffix("_tripdata")
        last = "2019-12" if service == "fhv" else "2020-12"
        assert span == {"start": "2019-01", "end": last}, key
        assert last in partitions.get_partition_keys()


@pytest.mark.parametrize("service", ["yellow", "green", "fhv"])
def test_the_reference_flow_reads_each_services_file(tmp_path, service):
    from lake_dev import bench

    src = generator.write_month(
        service,
        date(2019, 3, 1),
        700,
        tmp_path / generator.month_file_name(service, date(2019, 3, 1)),
    )
    figures = bench.case_baseline(src, tmp_path)
    assert figures["rows"] == 700
    assert (tmp_path / f"{service}_tripdata.parquet").stat().st_size == figures["parquet_bytes"]
