"""The deployment, tested as a team runs it: backfills launched through the webserver's GraphQL
API and run by the daemon through the queue, on PostgreSQL; the daemon killed mid-backfill and
the code server restarted; schedules, sensors and alerts ticked by the daemon."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time

import dagster as dg
import duckdb
import pytest

# Dagster exports no public name for a backfill's status.
from dagster._core.execution.backfill import BulkActionStatus

from lake_assets import identity
from lake_assets_tests.deploy.conftest import ROWS
from lake_assets_tests.stack import BACKFILL, LAUNCH_RUN, LOCATION
from lake_dev.deploy_local import instance_yaml

pytestmark = pytest.mark.deploy

SERVICES = tuple(ROWS)
TRIP_KEYS = [
    {"path": list(identity.trip_key(layer, s))} for s in SERVICES for layer in identity.TRIP_LAYERS
]


def _launch_backfill(stack, months: list[str]) -> str:
    result = stack.graphql(
        BACKFILL,
        {"params": {"partitionNames": months, "assetSelection": TRIP_KEYS, "fromFailure": False}},
    )["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return result["backfillId"]


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def _warehouse_steps(instance: dg.DagsterInstance, runs: list) -> list[tuple[float, float]]:
    spans = []
    for run in runs:
        started = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or not (event.step_key or "").startswith("warehouse__"):
                continue
            if event.event_type_value == "STEP_START":
                started[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                spans.append((started[event.step_key], entry.timestamp))
    return spans


def test_a_backfill_through_the_webserver_runs_through_the_queue(stack):
    months = ["2021-01", "2021-02", "2021-03"]
    backfill_id = _launch_backfill(stack, months)
    status = stack.wait(lambda: stack.backfill_done(backfill_id), 600, "the backfill")
    assert status == BulkActionStatus.COMPLETED_SUCCESS
    for service, rows in ROWS.items():
        assert stack.warehouse_counts(f"{service}_tripdata") == {m: rows for m in months}
    with stack.instance() as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        records = instance.get_run_records(dg.RunsFilter(run_ids=[r.run_id for r in runs]))
        spans = [(r.start_time, r.end_time) for r in records]
        # raw runs one month per run; lake and warehouse take the range in one run
        layers = {
            r.run_id: {k.to_user_string().split("/")[0] for k in r.asset_selection or ()}
            for r in runs
        }
        ranges = {
            r.run_id: (
                r.tags["dagster/asset_partition_range_start"],
                r.tags["dagster/asset_partition_range_end"],
            )
            for r in runs
        }
        raw = sorted(ranges[i] for i, ls in layers.items() if ls == {"raw"})
        assert raw == [(m, m) for m in months]
        derived = [i for i, ls in layers.items() if "raw" not in ls]
        assert {ranges[i] for i in derived} == {(months[0], months[-1])}
        assert set().union(*(layers[i] for i in derived)) == {"lake", "warehouse"}
        assert len(runs) == len(months) + len(derived)
        assert all(s and e for s, e in spans)
        # deploy/dagster.yaml: at most 4 runs, at most 3 of a backfill's, at a time
        assert _max_overlap(spans) <= 3
        # the warehouse pool: one warehouse step at a time across every run
        assert _max_overlap(_warehouse_steps(instance, runs)) == 1
    print(f"backfill of 3 months x 3 services: {len(runs)} runs, peak {_max_overlap(spans)}")


def test_a_daemon_killed_mid_backfill_restarts_and_completes_it(stack):
    months = ["2021-04", "2021-05", "2021-06"]
    backfill_id = _launch_backfill(stack, months)

    def started() -> bool:
        with stack.instance() as instance:
            return bool(instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id})))

    stack.wait(started, 300, "the backfill's first run")
    stack.deployment.stop_process("daemon", signal.SIGKILL)
    time.sleep(2)
    stack.deployment.spawn("daemon")
    stack.deployment.wait_ready("daemon")
    status = stack.wait(lambda: stack.backfill_done(backfill_id), 600, "the backfill")
    assert status == BulkActionStatus.COMPLETED_SUCCESS
    for service, rows in ROWS.items():
        counts = stack.warehouse_counts(f"{service}_tripdata")
        assert {m: counts.get(m) for m in months} == {m: rows for m in months}
    with stack.instance() as instance:
        # no month launched twice: one successful materialization of each warehouse month
        for service in SERVICES:
            key = dg.AssetKey(identity.trip_key(identity.WAREHOUSE, service))
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=months), limit=100
            ).records
            assert sorted(r.partition_key for r in records) == months


def _launch(stack, job: str, partition: str | None = None) -> str:
    tags = [{"key": "dagster/partition", "value": partition}] if partition else []
    params = {
        "selector": {**LOCATION, "jobName": job},
        "runConfigData": {},
        "executionMetadata": {"tags": tags},
    }
    result = stack.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def _alerts(stack, run_id: str) -> list[dict]:
    """What the webhook received about this run."""
    return [p for p in stack.posts if run_id in str(p)]


def _fields(post: dict) -> dict[str, str]:
    return {f["title"]: f["value"] for f in post["attachments"][0]["fields"]}


def _finished(stack, run_id: str):
    with stack.instance() as instance:
        run = instance.get_run_by_id(run_id)
        return run.status if run and run.is_finished else None


def test_the_code_server_restarts_and_the_webserver_reloads_it(stack):
    stack.deployment.stop_process("code_server", signal.SIGKILL)
    stack.deployment.spawn("code_server")
    stack.deployment.wait_ready("code_server")
    reloaded = stack.graphql(
        """mutation { reloadRepositoryLocation(repositoryLocationName: "lake_assets") {
             __typename ... on WorkspaceLocationEntry { locationOrLoadError { __typename } } } }"""
    )["reloadRepositoryLocation"]
    assert reloaded["locationOrLoadError"]["__typename"] == "RepositoryLocation", reloaded
    run_id = _launch(stack, "taxi_zones_job")
    assert stack.wait(lambda: _finished(stack, run_id), 300, "the run") == (
        dg.DagsterRunStatus.SUCCESS
    )
    con = duckdb.connect(stack.deployment.env["DUCKDB_PATH"], read_only=True)
    assert con.execute("SELECT count(*) FROM nyc_taxi.taxi_zones").fetchone() == (265,)
    con.close()


def test_a_run_the_killed_daemon_took_off_the_queue_but_never_launched_is_retried(stack):
    """The hole a daemon killed mid-launch leaves: the run is STARTING and no process runs it.
    Run monitoring fails it at the start timeout and run retries launch it again, so the work
    converges instead of ending failed."""
    # A run status sensor starts from its first tick: a failure before it is not its to post.
    stack.wait(lambda: _ticks(stack, "sensor", "run_failure_alert"), 120, "the alert's first tick")
    stack.deployment.stop_process("daemon", signal.SIGKILL)
    run_id = _launch(stack, "taxi_zones_job")  # queued: no daemon takes it
    timeout = instance_yaml()["run_monitoring"]["start_timeout_seconds"]
    with stack.instance() as instance:
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.QUEUED
        # What the daemon writes just before it calls the launcher, dated as if it had been
        # killed that long ago, so the test does not sit out the timeout.
        starting = dg.DagsterEvent(dg.DagsterEventType.RUN_STARTING.value, job_name=run.job_name)
        instance.handle_new_event(
            dg.EventLogEntry(
                error_info=None,
                level=logging.DEBUG,
                user_message="",
                run_id=run_id,
                timestamp=time.time() - timeout - 1,
                dagster_event=starting,
                job_name=run.job_name,
            )
        )
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTING
    stack.deployment.spawn("daemon")
    stack.deployment.wait_ready("daemon")

    def retried():
        with stack.instance() as instance:
            retries = instance.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": run_id}))
            return retries[0] if retries and retries[0].is_finished else None

    retry = stack.wait(retried, 300, "the retry")
    assert retry.status == dg.DagsterRunStatus.SUCCESS
    assert retry.tags["dagster/retry_number"] == "1"
    with stack.instance() as instance:
        failure = instance.get_run_by_id(run_id)
        assert failure.status == dg.DagsterRunStatus.FAILURE
        (event,) = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert f"taking longer than {timeout} seconds to start" in event.message
        # The retry, not an earlier test, built the zones the warehouse now has.
        key = dg.AssetKey(identity.zones_key(identity.WAREHOUSE))
        latest = instance.get_latest_materialization_event(key)
        assert latest.run_id == retry.run_id
    # Its alert says that a retry follows.
    (post,) = stack.wait(lambda: _alerts(stack, run_id), 180, "the alert")
    assert _fields(post)["retry"] == "automatic (run retries)"
    con = duckdb.connect(stack.deployment.env["DUCKDB_PATH"], read_only=True)
    assert con.execute("SELECT count(*) FROM nyc_taxi.taxi_zones").fetchone() == (265,)
    con.close()


def test_migrate_twice_is_a_no_op_and_a_second_process_sees_the_same_runs(stack):
    for _ in range(2):
        out = stack.deployment.migrate()
        # Every storage at the latest schema revision: current and latest name the same one.
        revisions = re.findall(r"current: (\w+)\s+latest: (\w+)", out)
        assert revisions and all(current == latest for current, latest in revisions), out
    with stack.instance() as instance:
        here = instance.get_runs_count()
    code = "import dagster as dg\nprint(dg.DagsterInstance.get().get_runs_count())"
    other = subprocess.run(
        [sys.executable, "-c", code],
        env=stack.deployment.process_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(other.stdout.strip().splitlines()[-1]) == here > 0


def _ticks(stack, kind: str, name: str) -> list[dict]:
    field = (
        "sensorOrError(sensorSelector: $s)"
        if kind == "sensor"
        else ("scheduleOrError(scheduleSelector: $s)")
    )
    selector = "SensorSelector" if kind == "sensor" else "ScheduleSelector"
    state = "sensorState" if kind == "sensor" else "scheduleState"
    ticks = "ticks(limit: 5) { status skipReason runIds timestamp }"
    query = f"""query($s: {selector}!) {{ {field} {{ __typename
        ... on {kind.capitalize()} {{ {state} {{ status {ticks} }} }}
    }} }}"""
    name_key = "sensorName" if kind == "sensor" else "scheduleName"
    data = stack.graphql(query, {"s": {**LOCATION, name_key: name}})
    # A tick the daemon is still evaluating (STARTED) has no outcome yet: only ended ones count.
    return [t for t in next(iter(data.values()))[state]["ticks"] if t["status"] != "STARTED"]


def test_the_daemon_ticks_a_sensor_and_a_schedule_against_postgres(stack):
    # The newest month, landed by an earlier test, is republished (a new Last-Modified): the
    # schedule runs it once, then skips it as unchanged.
    newest = stack.mirror / "yellow" / "yellow_tripdata_2021-06.csv.gz"
    later = time.time() + 3600
    os.utime(newest, (later, later))
    stack.graphql(
        """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename } }""",
        {"s": {**LOCATION, "sensorName": "yellow_new_release_sensor"}},
    )
    stack.graphql(
        "mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) { __typename } }",
        {"s": {**LOCATION, "scheduleName": "yellow_tripdata_job_schedule"}},
    )
    sensor = stack.wait(lambda: _ticks(stack, "sensor", "yellow_new_release_sensor"), 180, "a tick")
    assert sensor[0]["status"] == "SKIPPED"
    assert sensor[0]["skipReason"].startswith("every yellow month up to 2021-06 is landed")
    schedule = stack.wait(
        lambda: [
            t for t in _ticks(stack, "schedule", "yellow_tripdata_job_schedule") if t["runIds"]
        ],
        180,
        "a schedule tick with a run",
    )
    run_id = schedule[0]["runIds"][0]
    assert stack.wait(lambda: _finished(stack, run_id), 300, "the scheduled run") == (
        dg.DagsterRunStatus.SUCCESS
    )
    with stack.instance() as instance:
        assert instance.get_run_by_id(run_id).tags["dagster/partition"] == "2021-06"

    def skipped_after_the_run() -> list[dict]:
        ticks = _ticks(stack, "schedule", "yellow_tripdata_job_schedule")
        return [t for t in ticks if t["status"] == "SKIPPED" and t["timestamp"] > ended]

    with stack.instance() as instance:
        ended = instance.get_run_record_by_id(run_id).end_time
    (tick, *_) = stack.wait(skipped_after_the_run, 180, "a schedule tick after the run")
    assert tick["skipReason"].startswith("yellow 2021-06 is unchanged since it was landed (")


def test_a_failed_run_posts_one_alert_through_the_daemon(stack):
    missing = stack.mirror / "green" / "green_tripdata_2021-06.csv.gz"
    missing.rename(missing.with_suffix(".gone"))
    try:
        run_id = _launch(stack, "green_tripdata_job", "2021-06")
        assert stack.wait(lambda: _finished(stack, run_id), 300, "the run") == (
            dg.DagsterRunStatus.FAILURE
        )
        stack.wait(lambda: _alerts(stack, run_id), 180, "the alert")
        time.sleep(45)  # the sensor ticks again: still one post for this run
        (post,) = _alerts(stack, run_id)
        fields = _fields(post)
        assert fields["partition"] == "2021-06"
        assert "no such file" in fields["error"]
        assert "retry" not in fields  # a step's own failure: run retries leave it
    finally:
        missing.with_suffix(".gone").rename(missing)
