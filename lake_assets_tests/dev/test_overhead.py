"""Where a run's seconds go: the split of a run's events into phases, the import report, and the
bench's overhead section end to end on a 1,000-row month (no timings asserted beyond the phases
adding up to each run's wall time)."""

import json

import pytest

pytest.importorskip(
    "polars", reason="the bench extra is not installed (pip install -e '.[bench]' or make install)"
)

from lake_dev import bench, every_service, overhead  # noqa: E402

# A CLI run as its events say it went: two steps, started 100.0 on the clock, exited at 107.0.
CLI_EVENTS = [
    ("ASSET_MATERIALIZATION_PLANNED", "lake__yellow_tripdata", 101.5),
    ("PIPELINE_START", None, 102.0),
    ("STEP_WORKER_STARTING", "lake__yellow_tripdata", 102.25),
    ("STEP_WORKER_STARTED", "lake__yellow_tripdata", 103.75),
    ("STEP_START", "lake__yellow_tripdata", 104.0),
    ("STEP_SUCCESS", "lake__yellow_tripdata", 104.5),
    ("STEP_WORKER_STARTING", "warehouse__yellow_tripdata", 104.625),
    ("STEP_WORKER_STARTED", "warehouse__yellow_tripdata", 105.125),
    ("STEP_START", "warehouse__yellow_tripdata", 105.5),
    ("STEP_SUCCESS", "warehouse__yellow_tripdata", 105.75),
    ("PIPELINE_SUCCESS", None, 106.0),
]


def test_a_cli_run_splits_into_phases_that_add_up_to_its_wall_time():
    split = overhead.phases(reversed(CLI_EVENTS), 100.0, 107.0)
    assert split == {
        overhead.BEFORE_RUN: 1.5,
        overhead.QUEUED: 0.0,
        overhead.LAUNCH: 0.0,
        overhead.RUN_SETUP: 0.5,
        overhead.WORKER_START: 2.0,
        overhead.STEP_SETUP: 0.625,
        overhead.STEP_BODY: 0.75,
        overhead.BETWEEN: 0.625,
        overhead.AFTER_RUN: 1.0,
    }
    assert sum(split.values()) == 7.0
    assert overhead.first_step_after_dequeue(CLI_EVENTS) is None


def test_a_queued_run_charges_the_queue_and_the_run_worker_start():
    events = [
        ("ASSET_MATERIALIZATION_PLANNED", "lake__yellow_tripdata", 100.25),
        ("PIPELINE_ENQUEUED", None, 100.5),
        ("PIPELINE_STARTING", None, 101.0),  # the daemon took it off the queue
        *CLI_EVENTS[1:],
    ]
    split = overhead.phases(events, 100.0, 106.25)
    assert split == {
        overhead.BEFORE_RUN: 0.25,
        overhead.RUN_SETUP: 0.25,
        overhead.QUEUED: 0.5,
        overhead.LAUNCH: 1.0,
        overhead.WORKER_START: 2.0,
        overhead.STEP_SETUP: 0.625,
        overhead.STEP_BODY: 0.75,
        overhead.BETWEEN: 0.625,
        overhead.AFTER_RUN: 0.25,
    }
    assert sum(split.values()) == 6.25
    assert overhead.first_step_after_dequeue(events) == 3.0


# A queued run of three steps, two at once: launched at 100.0, its SUCCESS seen at 109.0.
MONTH_EVENTS = [
    ("PIPELINE_ENQUEUED", None, 100.5),
    ("PIPELINE_STARTING", None, 101.0),
    ("PIPELINE_START", None, 103.0),
    ("STEP_WORKER_STARTING", "raw", 103.25),
    ("STEP_WORKER_STARTING", "lake", 103.5),
    ("STEP_WORKER_STARTED", "raw", 104.0),
    ("STEP_WORKER_STARTED", "lake", 104.5),
    ("STEP_START", "raw", 104.25),
    ("STEP_START", "lake", 104.5),
    ("STEP_SUCCESS", "raw", 105.0),
    ("STEP_SUCCESS", "lake", 106.0),
    ("STEP_WORKER_STARTING", "marts", 106.0),
    ("STEP_WORKER_STARTED", "marts", 106.5),
    ("STEP_START", "marts", 107.0),
    ("STEP_SUCCESS", "marts", 108.5),
    ("PIPELINE_SUCCESS", None, 108.75),
]


def test_a_month_s_run_splits_into_a_timeline_that_adds_up_and_per_step_averages():
    t = every_service.timeline(MONTH_EVENTS, 100.0, 109.0)
    assert t == {
        "launched, queued until the daemon takes it": 1.0,
        "run worker: process start, imports, definitions": 2.0,
        "run start until its first step process starts": 0.25,
        "steps: first step process to the last step's end": 5.25,
        "run end, until the UI's poll sees SUCCESS": 0.5,
        "step process: fork, instance, plan": 0.75,
        "step start-up: resources, log capture": 0.25,
        "step body: the work, its checks and events": 1.25,
        "steps": 3,
        "at_once": 2,
    }
    assert sum(t[k] for k in every_service.TIMELINE) == 9.0


IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 | _io
import time:    200000 |     800000 | dagster
import time:    300000 |     300000 |   sqlalchemy
import time:    100000 |     200000 | pyarrow.lib
import time:     50000 |     150000 |   lake_assets.quality
import time:     70000 |      50000 | lake_assets.definitions
import time:     10000 |      20000 | requests
not an import line
"""


def test_imports_are_charged_by_package_with_each_module_s_own_time():
    costs = overhead.import_costs(IMPORTTIME)
    assert costs == {
        "sqlalchemy": 0.3,
        "dagster": 0.2,
        "lake_assets": 0.12,
        "pyarrow": 0.1,
        "requests": 0.01,
        "_io": 0.0,
        "total": 0.73,  # 0.7301 s, to the millisecond
    }
    assert list(costs)[:3] == ["sqlalchemy", "dagster", "lake_assets"]


def test_the_bench_overhead_section_runs_end_to_end_and_rewrites_its_block(tmp_path):
    out, page = tmp_path / "bench.json", tmp_path / "benchmark.md"
    page.write_text(
        f"# Method\n\n{bench.PAGE_START}\ningest figures\n{bench.PAGE_END}\n\n"
        f"{bench.OVERHEAD_START}\nold overhead\n{bench.OVERHEAD_END}\n\nReading.\n"
    )
    bench.main(
        ["--overhead-only", "--overhead-rounds", "1", "--root", str(tmp_path / "b")]
        + ["--out", str(out), "--page", str(page)]
    )
    report = json.loads(out.read_text())["overhead"]
    assert (report["rows"], report["rounds"]) == (1000, 1)
    assert list(report["ways"]) == ["in_process", "cli", "deployment"]
    for way in ("cli", "deployment"):
        entry = report["ways"][way]
        assert list(entry["phases"]) == list(overhead.PHASES)
        assert all(v >= 0 for v in entry["phases"].values()), entry
        # the phases account for the whole wall time (each rounded to the millisecond)
        assert abs(sum(entry["phases"].values()) - entry["wall_s"]) < 0.01, entry
        assert entry["over_work_s"] == round(entry["wall_s"] - report["work_s"], 3)
    cli, deployment = report["ways"]["cli"]["phases"], report["ways"]["deployment"]["phases"]
    assert (cli[overhead.QUEUED], cli[overhead.LAUNCH]) == (0.0, 0.0)
    assert deployment[overhead.QUEUED] > 0 and deployment[overhead.LAUNCH] > 0
    assert report["ways"]["deployment"]["first_step_after_dequeue_s"] > 0
    assert {"dagster", "lake_assets", "total"} <= set(report["imports"])
    text = page.read_text()
    assert "ingest figures" in text and "old overhead" not in text
    assert text.endswith(f"{bench.OVERHEAD_END}\n\nReading.\n")
    assert "| step processes: fork, instance, plan |" in text and "| deployment |" in text
    # A month of every service: in one process, and from the UI through the deployment.
    month = report["every_service"]
    timeline = month["timeline"]
    assert (timeline["steps"], month["rounds"]) == (11, 1)
    assert 1 <= timeline["at_once"] <= 2  # the multiprocess executor's default: one per core
    assert abs(sum(timeline[k] for k in every_service.TIMELINE) - month["ui_s"]) < 0.01
    assert month["work_s"] > 0 and all(timeline[k] >= 0 for k in every_service.TIMELINE)
    assert "A month of every service (yellow 20,000, fhv 10,000, green 5,000 rows" in text
