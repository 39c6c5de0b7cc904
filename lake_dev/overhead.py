"""`make bench`'s run overhead: what a user waits for beyond the work itself.

One small yellow month (1,000 rows, raw already landed) through the lake and warehouse steps
three ways: the steps' own functions in one process (the work), `dagster asset materialize`
(the CLI), and a run launched through the webserver's GraphQL API of `make deploy-local`'s stack
and started by its daemon (the deployment). Each run's wall time is split into phases read from
Dagster's own events (RUN_ENQUEUED, RUN_STARTING, STEP_WORKER_STARTING, STEP_START …),
and `python -X importtime` says what importing the code location costs, package by package.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

from lake_dev import every_service

ROWS = 1_000
# The phases of a run, in the order they happen; they add up to the run's wall time.
BEFORE_RUN = "until the run exists (CLI: process start, imports, definitions)"
RUN_SETUP = "run set-up (planned events; the deployment: until queued)"
QUEUED = "queued, until the daemon takes it"
LAUNCH = "run worker: process start, imports, definitions"
WORKER_START = "step processes: fork, instance, plan"
STEP_SETUP = "step start-up: resources, log capture"
STEP_BODY = "step bodies (the work and its events)"
BETWEEN = "between steps, run end"
AFTER_RUN = "after RUN_SUCCESS (process exit; the poll that sees it)"
PHASES = (BEFORE_RUN, RUN_SETUP, QUEUED, LAUNCH, WORKER_START, STEP_SETUP, STEP_BODY, BETWEEN)
PHASES += (AFTER_RUN,)

Event = tuple[str, "str | None", float]  # (event type value, step key, timestamp)


def _first(events: list[Event], kind: str) -> float:
    return next(t for k, _, t in events if k == kind)


def _paired(events: list[Event], start: str, end: str) -> float:
    """Seconds between each step's start event and its end event, summed over the steps."""
    begun = {step: t for k, step, t in events if k == start}
    return sum(t - begun[step] for k, step, t in events if k == end and step in begun)


def _queued(events: list[Event]) -> bool:
    return any(k == "PIPELINE_ENQUEUED" for k, _, _ in events)


def phases(events: Iterable[Event], started: float, ended: float) -> dict[str, float]:
    """A successful run's wall time (started → ended, on the events' clock) split into PHASES.

    A queued run (the deployment: RUN_ENQUEUED) waits from being enqueued until the daemon takes
    it (RUN_STARTING, Dagster's event for leaving the queue), then its run worker starts until
    RUN_START. A CLI run executes in the CLI's own process from its first event on."""
    events = sorted(events, key=lambda e: e[2])
    first, run_start = events[0][2], _first(events, "PIPELINE_START")
    run_end = _first(events, "PIPELINE_SUCCESS")
    out = dict.fromkeys(PHASES, 0.0)
    out[BEFORE_RUN] = first - started
    if _queued(events):
        enqueued, taken = _first(events, "PIPELINE_ENQUEUED"), _first(events, "PIPELINE_STARTING")
        out[RUN_SETUP] = enqueued - first
        out[QUEUED] = taken - enqueued
        out[LAUNCH] = run_start - taken
    else:
        out[RUN_SETUP] = run_start - first
    out[WORKER_START] = _paired(events, "STEP_WORKER_STARTING", "STEP_WORKER_STARTED")
    out[STEP_SETUP] = _paired(events, "STEP_WORKER_STARTED", "STEP_START")
    out[STEP_BODY] = _paired(events, "STEP_START", "STEP_SUCCESS")
    out[BETWEEN] = run_end - run_start - out[WORKER_START] - out[STEP_SETUP] - out[STEP_BODY]
    out[AFTER_RUN] = ended - run_end
    return {k: round(v, 3) for k, v in out.items()}


def first_step_after_dequeue(events: Iterable[Event]) -> float | None:
    """Seconds from the daemon taking a queued run (RUN_STARTING) to its first step's start."""
    events = list(events)
    if not _queued(events):
        return None
    return round(_first(events, "STEP_START") - _first(events, "PIPELINE_STARTING"), 3)


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \| +(\S+)")


def import_costs(importtime: str) -> dict[str, float]:
    """Seconds per top-level package from `python -X importtime`'s report (its stderr): the
    self time of each of its modules, summed; the largest first, then "total"."""
    costs: dict[str, float] = {}
    for line in importtime.splitlines():
        if m := _IMPORT_LINE.match(line):
            package = m.group(2).split(".")[0]
            costs[package] = costs.get(package, 0.0) + int(m.group(1)) / 1e6
    ranked = sorted(costs.items(), key=lambda kv: -kv[1])
    return {**{k: round(v, 3) for k, v in ranked}, "total": round(sum(costs.values()), 3)}


def measure_imports(env: dict[str, str]) -> dict[str, float]:
    """What importing the code location (and building its definitions) costs a fresh process."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import lake_assets.definitions"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return import_costs(done.stderr)


def _events(instance, run_id: str) -> list[Event]:
    return [
        (e.dagster_event.event_type_value, e.step_key, e.timestamp)
        for e in instance.all_logs(run_id)
        if e.dagster_event
    ]


def measure_in_process(src: Path, scratch: Path) -> dict:
    """The steps' own functions (bench's lake_assets case): the work a run wraps."""
    from lake_dev import bench

    m = bench.measure("lake_assets", src, scratch)
    work = m["stages"]["lake"] + m["stages"]["warehouse"]
    return {"wall_s": m["wall_s"], "work_s": round(work, 3)}


def measure_cli(src: Path, scratch: Path) -> dict:
    """`dagster asset materialize --partition` of the lake and warehouse steps, split."""
    import dagster as dg

    from lake_dev import bench

    work = Path(tempfile.mkdtemp(prefix="overhead_cli_", dir=scratch))
    bench._land_raw(src, work / "lake")
    bench._fresh_instance(work / "dagster_home")
    started = time.time()
    out = subprocess.run(
        bench._materialize_cmd("--partition", bench.MONTH_KEY),
        env=bench._cli_env(src, work),
        capture_output=True,
        text=True,
    )
    ended = time.time()
    if out.returncode != 0:
        raise SystemExit(f"overhead: the CLI run failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")
    with dg.DagsterInstance.from_config(str(work / "dagster_home")) as instance:
        (run,) = instance.get_runs()
        events = _events(instance, run.run_id)
    return {"wall_s": round(ended - started, 3), "phases": phases(events, started, ended)}


@contextmanager
def _environ(env: dict[str, str]):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


LAUNCH_RUN = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


def launch_and_wait(url: str, keys: list[str], partition: str | None) -> tuple[str, float, float]:
    """launchRun of keys as the UI's Materialize sends it, polled until the run has succeeded:
    its id and the wall clock (time.time) at the launch and when SUCCESS was seen."""
    from lake_dev import bench
    from lake_dev.deploy_local import LOCATION

    tags = [{"key": "dagster/partition", "value": partition}] if partition else []
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": k.split("/")} for k in keys],
        },
        "executionMetadata": {"tags": tags},
    }
    started = time.time()
    launched = bench._graphql(url, LAUNCH_RUN, {"p": params})["launchRun"]
    if launched["__typename"] != "LaunchRunSuccess":
        raise SystemExit(f"overhead: the deployment did not launch the run: {launched}")
    run_id = launched["run"]["runId"]
    while True:
        status = bench._graphql(url, RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(0.05)
    if status != "SUCCESS":
        raise SystemExit(f"overhead: the deployment's run {run_id} ended {status}")
    return run_id, started, time.time()


def run_events(stack, run_id: str) -> list[Event]:
    """The run's events, read from the stack's instance."""
    import dagster as dg

    with _environ(stack.process_env()), dg.DagsterInstance.from_config(str(stack.home)) as inst:
        return _events(inst, run_id)


def measure_daemon(src: Path, scratch: Path) -> dict:
    """The same month launched as the UI's Materialize does (launchRun), queued and started by
    the daemon of make deploy-local's stack (started before the clock)."""
    from lake_dev import bench

    work = Path(tempfile.mkdtemp(prefix="overhead_daemon_", dir=scratch))
    bench._land_raw(src, work / "lake")
    stack = bench.deployment(work, bench._lake_settings(src, work))
    try:
        stack.start()
        run_id, started, ended = launch_and_wait(
            stack.url, bench.TRIP_STEPS.split(","), bench.MONTH_KEY
        )
        events = run_events(stack, run_id)
    finally:
        stack.stop()
    return {
        "wall_s": round(ended - started, 3),
        "phases": phases(events, started, ended),
        "first_step_after_dequeue_s": first_step_after_dequeue(events),
    }


def run_overhead(root: Path, rounds: int, env: dict[str, str]) -> dict:
    """Every way, round by round; medians."""
    from lake_dev import bench

    src = bench.month_file(root / "data", ROWS)
    scratch = root / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    samples: dict[str, list[dict]] = {"in_process": [], "cli": [], "deployment": []}
    ways = {"in_process": measure_in_process, "cli": measure_cli, "deployment": measure_daemon}
    imports = []
    mirror = every_service.write_mirror(root / "data")
    month: dict[str, list] = {"work_s": [], "ui": []}
    for r in range(rounds):
        bench._warm([src])
        imports.append(measure_imports(env))
        for way, measure in ways.items():
            m = measure(src, scratch)
            samples[way].append(m)
            print(f"overhead round {r + 1}/{rounds} {way:<11} {m['wall_s']:>6.2f} s", flush=True)
        month["work_s"].append(every_service.measure_work(mirror, scratch, env))
        month["ui"].append(every_service.measure_ui(mirror, scratch))
        print(
            f"overhead round {r + 1}/{rounds} a month of every service: work "
            f"{month['work_s'][-1]:.2f} s, from the UI {month['ui'][-1]['wall_s']:.2f} s",
            flush=True,
        )
    work = statistics.median(m["work_s"] for m in samples["in_process"])
    report: dict = {"rows": ROWS, "rounds": rounds, "work_s": round(work, 3), "ways": {}}
    for way, runs in samples.items():
        wall = statistics.median(m["wall_s"] for m in runs)
        entry = {"wall_s": round(wall, 3), "over_work_s": round(wall - work, 3)}
        if "phases" in runs[0]:
            entry["phases"] = {p: round(statistics.median(m["phases"][p] for m in runs), 3)
                               for p in PHASES}  # fmt: skip
        if way == "deployment":
            entry["first_step_after_dequeue_s"] = statistics.median(
                m["first_step_after_dequeue_s"] for m in runs
            )
        report["ways"][way] = entry
    report["every_service"] = {
        "rounds": rounds,
        "work_s": round(statistics.median(month["work_s"]), 3),
        "ui_s": round(statistics.median(m["wall_s"] for m in month["ui"]), 3),
        "timeline": {
            k: statistics.median(m["timeline"][k] for m in month["ui"])
            for k in month["ui"][0]["timeline"]
        },
    }
    medians = {k: statistics.median(i.get(k, 0.0) for i in imports) for k in imports[0]}
    report["imports"] = dict(sorted(medians.items(), key=lambda kv: -kv[1]))
    return report


def _top(costs: dict[str, float], count: int) -> dict[str, float]:
    ranked = sorted(((k, v) for k, v in costs.items() if k != "total"), key=lambda kv: -kv[1])
    return dict(ranked[:count])


def table(report: dict) -> str:
    ways = report["ways"]
    lines = [
        f"Run overhead: {report['rows']:,} rows of yellow through the lake and warehouse steps, "
        f"medians of {report['rounds']} rounds; the work itself (the steps' functions in one "
        f"process) takes {report['work_s']:.2f} s",
        "",
        "| way | wall s | over the work s |",
        "|---|---:|---:|",
        *(f"| {w} | {d['wall_s']:.2f} | {d['over_work_s']:.2f} |" for w, d in ways.items()),
        "",
        "| phase, seconds | " + " | ".join(w for w in ways if "phases" in ways[w]) + " |",
        "|---|" + "---:|" * sum("phases" in d for d in ways.values()),
    ]
    for phase in PHASES:
        values = [d["phases"][phase] for d in ways.values() if "phases" in d]
        lines.append(f"| {phase} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    after = ways.get("deployment", {}).get("first_step_after_dequeue_s")
    if after is not None:
        lines += ["", f"The deployment's first step starts {after:.2f} s after leaving the queue."]
    if "every_service" in report:
        lines += ["", every_service.table(report["every_service"])]
    lines += [
        "",
        "Importing the code location in a fresh process (`python -X importtime`), by package: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in _top(report["imports"], 6).items())
        + f"; in all {report['imports']['total']:.2f} s",
    ]
    return "\n".join(lines)
