"""`make bench`'s month of every service: what a user waits for after *Materialize* in the UI.

One month of the demo's size (yellow 20,000 rows, fhv 10,000, green 5,000) through raw, lake and
warehouse of the three services and the two marts, two ways:

- **the work**: the same selection with `dg.materialize` in one process (Dagster's in-process
  executor, an ephemeral instance), timed from the call to its return: every step and check,
  no process start, no queue;
- **from the UI**: launched as the UI's *Materialize* launches it (GraphQL `launchRun` with the
  month's partition tag) through `make deploy-local`'s stack, started before the clock, until the
  run's status is SUCCESS.

The zone lookup is loaded before either clock starts: it is loaded once, not monthly.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from lake_dev import generator

MONTH = "2021-01"
ROWS = 20_000


def selection() -> list[str]:
    """The month's assets: every service's three layers, then the marts."""
    from lake_assets import identity
    from lake_assets.schemas import MART_CONTRACTS, SERVICES

    trips = identity.trip_selection(SERVICES, identity.TRIP_LAYERS)
    return [*trips, *(identity.key_string(identity.mart_key(c.name)) for c in MART_CONTRACTS)]


def zones() -> list[str]:
    from lake_assets import identity

    return [identity.key_string(identity.zones_key(layer)) for layer in identity.TRIP_LAYERS]


def settings_env(mirror: Path, work: Path) -> dict[str, str]:
    return {
        **generator.mirror_settings(mirror),
        "LAKE_DIR": str(work / "lake"),
        "DUCKDB_PATH": str(work / "warehouse.duckdb"),
        "TLC_START_MONTH": MONTH,
        "TLC_END_MONTH": MONTH,
    }


def write_mirror(root: Path) -> Path:
    mirror = root / "every_service_mirror"
    month = date.fromisoformat(f"{MONTH}-01")
    generator.write_mirror(
        mirror, ("yellow", "green", "fhv"), [month], generator.rows_per_service(ROWS)
    )
    return mirror


def _child_work() -> None:
    """In the child: the zones (untimed), then the month, in this process; prints the seconds."""
    import dagster as dg

    from lake_assets.definitions import build_definitions
    from lake_assets.settings import Settings

    defs = build_definitions(Settings.from_env())
    assets = list(defs.assets)
    with dg.DagsterInstance.ephemeral() as instance:
        done = dg.materialize(
            assets, selection=zones(), resources=defs.resources, instance=instance
        )
        assert done.success
        started = time.monotonic()
        done = dg.materialize(
            assets,
            selection=selection(),
            partition_key=MONTH,
            resources=defs.resources,
            instance=instance,
        )
        seconds = time.monotonic() - started
    if not done.success:
        raise SystemExit("every_service: the in-process month failed")
    print("EVERY_SERVICE_WORK " + json.dumps({"work_s": round(seconds, 3)}), flush=True)


def measure_work(mirror: Path, scratch: Path, env: dict[str, str]) -> float:
    work = Path(tempfile.mkdtemp(prefix="every_service_work_", dir=scratch))
    done = subprocess.run(
        [sys.executable, "-m", "lake_dev.every_service", "--child"],
        env={**env, **settings_env(mirror, work)},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(
            f"every_service: the work failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    line = next(x for x in done.stdout.splitlines() if x.startswith("EVERY_SERVICE_WORK "))
    return json.loads(line.split(" ", 1)[1])["work_s"]


# Wall-clock segments of a queued run whose steps overlap, in the order they happen.
TIMELINE = (
    "launched, queued until the daemon takes it",
    "run worker: process start, imports, definitions",
    "run start until its first step process starts",
    "steps: first step process to the last step's end",
    "run end, until the UI's poll sees SUCCESS",
)
# Per step, averaged: where each of the steps' time goes.
PER_STEP = (
    ("STEP_WORKER_STARTING", "STEP_WORKER_STARTED", "step process: fork, instance, plan"),
    ("STEP_WORKER_STARTED", "STEP_START", "step start-up: resources, log capture"),
    ("STEP_START", "STEP_SUCCESS", "step body: the work, its checks and events"),
)


def timeline(events: list[tuple[str, str | None, float]], started: float, ended: float) -> dict:
    """A successful queued run's wall time split into TIMELINE (they add up to it), the average
    of each PER_STEP span, the number of steps and how many ran at once at most."""

    def first(kind: str) -> float:
        return min(t for k, _, t in events if k == kind)

    last_step = max(t for k, _, t in events if k == "STEP_SUCCESS")
    marks = [
        started,
        first("PIPELINE_STARTING"),
        first("PIPELINE_START"),
        first("STEP_WORKER_STARTING"),
        last_step,
        ended,
    ]
    out: dict = {
        name: round(b - a, 3) for name, a, b in zip(TIMELINE, marks[:-1], marks[1:], strict=True)
    }
    steps = {step for k, step, _ in events if k == "STEP_SUCCESS"}
    for start, end, name in PER_STEP:
        begun = {step: t for k, step, t in events if k == start}
        spans = [t - begun[step] for k, step, t in events if k == end and step in begun]
        out[name] = round(sum(spans) / len(spans), 3)
    spans = [
        (t, +1) if k == "STEP_WORKER_STARTING" else (t, -1)
        for k, _, t in events
        if k in ("STEP_WORKER_STARTING", "STEP_SUCCESS")
    ]
    running = at_once = 0
    for _, change in sorted(spans):
        running += change
        at_once = max(at_once, running)
    return {**out, "steps": len(steps), "at_once": at_once}


def measure_ui(mirror: Path, scratch: Path) -> dict:
    """The month launched through the deployment: wall seconds, and its timeline from the run's
    events."""
    from lake_dev import bench, overhead

    work = Path(tempfile.mkdtemp(prefix="every_service_ui_", dir=scratch))
    stack = bench.deployment(work, settings_env(mirror, work))
    try:
        stack.start()
        overhead.launch_and_wait(stack.url, zones(), None)
        run_id, started, ended = overhead.launch_and_wait(stack.url, selection(), MONTH)
        events = overhead.run_events(stack, run_id)
    finally:
        stack.stop()
    return {"wall_s": round(ended - started, 3), "timeline": timeline(events, started, ended)}


def table(report: dict) -> str:
    work, ui, t = report["work_s"], report["ui_s"], report["timeline"]
    text = (
        f"A month of every service (yellow {ROWS:,}, fhv {ROWS // 2:,}, green {ROWS // 4:,} rows: "
        "raw, lake and warehouse of each, and the two marts), medians of "
        f"{report['rounds']} rounds: in one process {work:.2f} s (the work); launched as the "
        f"UI's Materialize launches it, through the deployment, {ui:.2f} s: {ui / work:.2f} "
        f"times the work. The run has {t['steps']} steps, at most {t['at_once']} at once."
    )
    lines = [text, "", "| the run from the UI | seconds |", "|---|---:|"]
    lines += [f"| {name} | {t[name]:.2f} |" for name in TIMELINE]
    lines += [f"| each step on average: {name} | {t[name]:.2f} |" for _, _, name in PER_STEP]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child_work()


if __name__ == "__main__":
    main()
