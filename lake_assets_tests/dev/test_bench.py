"""The benchmark harness runs end to end on a tiny month and reports every field (no timings
are asserted: speed and memory are the benchmark's business, not the test suite's)."""

import json

import pytest

# The reference pair needs the bench extra; without it the harness cannot run its cases.
pytest.importorskip(
    "polars", reason="the bench extra is not installed (pip install -e '.[bench]' or make install)"
)

from lake_dev import bench  # noqa: E402


def test_bench_runs_every_case_on_a_tiny_month_and_writes_its_fields(tmp_path):
    out = tmp_path / "bench.json"
    page = tmp_path / "benchmark.md"
    page.write_text(
        f"# Method\n\n{bench.PAGE_START}\nold figures\n{bench.PAGE_END}\n\nReading.\n\n"
        f"{bench.SCALE_START}\nold curve\n{bench.SCALE_END}\n"
    )
    bench.main(
        ["--rows", "3000", "--rounds", "1", "--root", str(tmp_path / "b"), "--out", str(out)]
        + ["--backfill-months", "2", "--backfill-rows", "500", "--settle", "0"]
        + ["--page", str(page), "--overhead-rounds", "0", "--scale-rows", "1000", "3000"]
    )
    text = page.read_text()
    assert text.startswith("# Method\n\n") and text.endswith(f"{bench.SCALE_END}\n")
    assert f"{bench.PAGE_END}\n\nReading.\n\n{bench.SCALE_START}" in text
    assert "old figures" not in text and "| lake_assets |" in text
    # the scale curve: each size loaded in full, in its own process
    assert "old curve" not in text and "| 3,000 |" in text
    points = json.loads(out.read_text())["scale"]["points"]
    assert [p["rows"] for p in points] == [1000, 3000]
    assert all(p["wall_s"] > 0 and p["peak_rss_mb"] > 0 for p in points)
    assert "From 1,000 to 3,000 rows (3 times)" in text
    report = json.loads(out.read_text())
    assert report["rows"] == 3000 and report["rounds"] == 1
    assert set(report["cases"]) == {*bench.CASES, *bench.BACKFILL_CASES, *bench.FLOOR_CASES}
    # Stages timed inside each case's own process; the CLI case is one opaque command.
    stages = {
        "baseline": ["import", "read_csv", "to_parquet", "load"],
        "lake_assets": ["import", "lake", "warehouse"],
        "dagster_cli": None,
        "polars_duckdb": ["import", "convert", "load"],
        "polars_duckdb_typed": ["import", "convert", "load"],
        "floor_inflate_zlib": ["import", "inflate"],
        "floor_inflate_isal": ["import", "inflate"],
        "floor_duckdb_parse": ["import", "parse"],
    }
    assert set(stages) == {*bench.CASES, *bench.FLOOR_CASES}
    for case, names in stages.items():
        median = report["cases"][case]["median"]
        fields = {"wall_s", "cpu_s", "peak_rss_mb", "rows", "rows_per_s", "parquet_bytes"}
        assert set(median) == fields | ({"stages"} if names else set()), case
        # Every case read the whole month: the floors count its lines or parse its rows.
        assert median["rows"] == 3000, case
        assert median["wall_s"] > 0 and median["peak_rss_mb"] > 0
        assert (median["parquet_bytes"] > 0) == (case in bench.CASES), case
        if names:
            assert list(median["stages"]) == names, case
            assert all(v >= 0 for v in median["stages"].values())
            assert sum(median["stages"].values()) <= median["wall_s"], case
    assert set(report["ratios"]) == {
        "lake_assets",
        "dagster_cli",
        "polars_duckdb",
        "polars_duckdb_typed",
        "backfill_one_run",
        "backfill_deployment",
    }
    # The backfill: two months of 500 rows, as two runs, as one, and through the deployment.
    assert report["backfill"] == {"months": 2, "rows_per_month": 500}
    per_month = report["cases"]["backfill_runs_per_month"]["median"]
    one_run = report["cases"]["backfill_one_run"]["median"]
    assert (per_month["runs"], one_run["runs"]) == (2, 1)
    assert per_month["rows"] == one_run["rows"] == 1000
    assert report["ratios"]["backfill_one_run"]["speedup_vs_runs_per_month"] > 0
    assert "| backfill_one_run | 1 |" in bench.table(report)
    deployed = report["cases"]["backfill_deployment"]["median"]
    # One run for the range (single_run policy), queued and launched by the daemon.
    assert (deployed["runs"], deployed["rows"]) == (1, 1000)
    assert report["ratios"]["backfill_deployment"]["wall_vs_one_run"] > 0
    assert "| backfill_deployment | 1 |" in bench.table(report)
    assert set(report["ratios"]["lake_assets"]) == {
        "speedup_vs_baseline",
        "rss_vs_baseline",
        "wall_vs_polars_duckdb",
        "wall_vs_polars_duckdb_typed",
    }
    assert "lake_assets wall time / the pair's, round by round" in bench.table(report)
    assert {"cpus", "memory_gb", "python", "platform"} <= set(report["machine"])
    # the cached month is reused, not regenerated
    (month,) = (tmp_path / "b" / "data").glob("gen-*/rows_3000/yellow/*.csv.gz")
    made = month.stat().st_mtime_ns
    assert bench.month_file(tmp_path / "b" / "data", 3000) == month
    assert month.stat().st_mtime_ns == made
    assert "| lake_assets |" in bench.table(report)
    assert "- lake_assets: import " in bench.table(report)
    assert "| floor_duckdb_parse |" in bench.table(report)
