"""The deployment as shipped (deploy/Dockerfile, deploy/docker-compose.yaml, deploy/dagster.yaml)
run as containers on a real Docker daemon, driven through the webserver's GraphQL API as the UI
drives it: the daemon launches every run as a container of the project's image, Terminate stops
one, a crashed daemon is restarted by its restart policy and resumes its backfill, `down` and
`up` keep the data and the run history, and no run container is left behind."""

from __future__ import annotations

import os
import signal
import time

import pytest

from lake_assets import identity
from lake_assets_tests.containers.conftest import BIG_MONTH, ROWS, Stack
from lake_assets_tests.helpers import poll
from lake_assets_tests.stack import BACKFILL, LAUNCH_RUN, LOCATION
from lake_dev import generator

pytestmark = pytest.mark.containers

SERVICES = generator.rows_per_service(ROWS)
ENDED = {"SUCCESS", "FAILURE", "CANCELED"}


def _keys(*services: str) -> list[dict]:
    return [
        {"path": list(identity.trip_key(layer, s))}
        for s in services
        for layer in identity.TRIP_LAYERS
    ]


BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status runs(limit: 100) { runId status tags { key value } } }
  }
}"""
RUN = """
query($id: ID!) {
  runOrError(runId: $id) {
    ... on Run { status tags { key value } stats { ... on RunStatsSnapshot { stepsFailed } } }
  }
}"""
TERMINATE = """
mutation($id: String!) {
  terminateRun(runId: $id) { __typename ... on Error { message } }
}"""
RUN_IDS = "{ runsOrError(limit: 1000) { ... on Runs { results { runId status } } } }"
MATERIALIZATIONS = """
query($key: AssetKeyInput!, $partitions: [String!]) {
  assetOrError(assetKey: $key) {
    ... on Asset { assetMaterializations(partitions: $partitions) { partition runId } }
  }
}"""


def _backfill(stack: Stack, months: list[str], readonly: bool = False) -> dict:
    params = {"partitionNames": months, "assetSelection": _keys(*SERVICES), "fromFailure": False}
    return stack.graphql(BACKFILL, {"params": params}, readonly=readonly)["launchPartitionBackfill"]


def _backfill_ended(stack: Stack, backfill_id: str) -> dict | None:
    backfill = stack.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
    if backfill["status"] == "REQUESTED" or any(r["status"] not in ENDED for r in backfill["runs"]):
        return None
    return backfill


def _wait(stack: Stack, condition, timeout: float, what: str):
    value = poll(condition, timeout, 2)
    if not value:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{stack.logs()}")
    return value


def _assert_run_containers_removed(stack: Stack) -> None:
    """A run's worker records the run's end a moment before its process exits and Docker
    removes the container, so the removal is awaited, not assumed."""
    _wait(stack, lambda: stack.run_containers() == [], 30, "the run containers' removal")


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def _run_backfill(stack: Stack, months: list[str], during=None) -> dict:
    launched = _backfill(stack, months)
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    if during:
        during(launched["backfillId"])
    backfill = _wait(
        stack, lambda: _backfill_ended(stack, launched["backfillId"]), 480, "the backfill"
    )
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    # Every run succeeded, or died (a daemon killed before launching it) and its one retry did.
    succeeded = {r["runId"] for r in backfill["runs"] if r["status"] == "SUCCESS"}
    for run in backfill["runs"]:
        if run["status"] != "SUCCESS":
            assert _tags(run).get("dagster/auto_retry_run_id") in succeeded, run
    # Each run was a container of the project's image, and none is left.
    for run in backfill["runs"]:
        tags = _tags(run)
        assert tags["dagster/image"] == "lake_assets:latest" and tags["docker/container_id"]
    _assert_run_containers_removed(stack)
    return backfill


def _assert_rows(stack: Stack, months: list[str]) -> None:
    for service, rows in SERVICES.items():
        counts = stack.warehouse_counts(f"{service}_tripdata")
        assert {m: counts.get(m) for m in months} == {m: rows for m in months}, service


def test_a_month_of_every_service_runs_as_run_containers(stack: Stack):
    backfill = _run_backfill(stack, ["2021-01"])
    _assert_rows(stack, ["2021-01"])
    # The containers are gone; their step logs are in the logs volume, under each run's id.
    files = stack.compute_log_files()
    for run in backfill["runs"]:
        assert [f for f in files if f"/{run['runId']}/" in f], run["runId"]


def test_the_read_only_webserver_shows_the_runs_and_refuses_a_launch(stack: Stack):
    runs = stack.graphql(RUN_IDS)["runsOrError"]["results"]
    assert stack.graphql(RUN_IDS, readonly=True)["runsOrError"]["results"] == runs
    refused = _backfill(stack, ["2021-02"], readonly=True)
    assert refused["__typename"] == "UnauthorizedError", refused
    assert stack.graphql(RUN_IDS)["runsOrError"]["results"] == runs


def _launch_run(stack: Stack, service: str, month: str) -> str:
    """What the asset graph's Materialize sends for one service's month."""
    params = {
        "selector": {**LOCATION, "jobName": "__ASSET_JOB", "assetSelection": _keys(service)},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": month}]},
    }
    launched = stack.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def _status(stack: Stack, run_id: str) -> str:
    return stack.graphql(RUN, {"id": run_id})["runOrError"]["status"]


def test_terminate_stops_the_run_container_and_the_run_is_canceled(stack: Stack):
    before = stack.warehouse_counts("yellow_tripdata")
    run_id = _launch_run(stack, "yellow", BIG_MONTH)

    def status() -> str:
        return _status(stack, run_id)

    _wait(stack, lambda: status() == "STARTED", 180, "the run to start in its container")
    terminated = stack.graphql(TERMINATE, {"id": run_id})["terminateRun"]
    assert terminated["__typename"] == "TerminateRunSuccess", terminated
    _wait(stack, lambda: status() in ENDED, 120, "the run to end")
    assert status() == "CANCELED"
    _assert_run_containers_removed(stack)
    # Nothing of the canceled month reached the warehouse; the months before are untouched.
    assert stack.warehouse_counts("yellow_tripdata") == before


def _kill_daemon_once_running(stack: Stack, backfill_id: str) -> None:
    """Kills the daemon's process from outside, as a crash would: the restart policy, not the
    test, brings it back."""
    _wait(
        stack,
        lambda: stack.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"][
            "runs"
        ],
        240,
        "the backfill's first run",
    )
    name = "lake_assets_daemon_1"
    pid, restarts = stack.docker("inspect", "-f", "{{.State.Pid}} {{.RestartCount}}", name).split()
    os.kill(int(pid), signal.SIGKILL)
    _wait(
        stack,
        lambda: (
            stack.docker("inspect", "-f", "{{.RestartCount}} {{.State.Running}}", name).split()
            == [str(int(restarts) + 1), "true"]
        ),
        60,
        "the daemon's restart",
    )


def test_a_daemon_that_crashes_mid_backfill_is_restarted_and_completes_it(stack: Stack):
    months = ["2021-02", "2021-03"]
    _run_backfill(stack, months, during=lambda bid: _kill_daemon_once_running(stack, bid))
    _assert_rows(stack, months)
    # No month built twice: one materialization of each warehouse month.
    for service in SERVICES:
        key = {"path": list(identity.trip_key(identity.WAREHOUSE, service))}
        found = stack.graphql(MATERIALIZATIONS, {"key": key, "partitions": months})
        partitions = [m["partition"] for m in found["assetOrError"]["assetMaterializations"]]
        assert sorted(partitions) == months, service


def test_down_and_up_keep_the_data_and_the_run_history(stack: Stack):
    runs = stack.graphql(RUN_IDS)["runsOrError"]["results"]
    counts = {s: stack.warehouse_counts(f"{s}_tripdata") for s in SERVICES}
    started = time.monotonic()
    stack.containers.down()
    project = "label=com.docker.compose.project=lake_assets"
    assert stack.docker("ps", "-a", "-q", "--filter", project) == ""
    stack.containers.up(build=False)
    print(f"down and up: {time.monotonic() - started:.1f} s")
    assert stack.graphql(RUN_IDS)["runsOrError"]["results"] == runs
    assert {s: stack.warehouse_counts(f"{s}_tripdata") for s in SERVICES} == counts
    # And the stack still works: a month rebuilt through it, with the same rows.
    run_id = _launch_run(stack, "green", "2021-03")
    _wait(stack, lambda: _status(stack, run_id) in ENDED, 180, "the run")
    assert _status(stack, run_id) == "SUCCESS"
    _assert_run_containers_removed(stack)
    _assert_rows(stack, ["2021-01", "2021-02", "2021-03"])


def test_the_stack_stops_cleanly(stack: Stack):
    """Last: `down -v` leaves no container, volume or network of the stack behind."""
    stack.containers.down(volumes=True)
    project = "label=com.docker.compose.project=lake_assets"
    assert stack.docker("ps", "-a", "-q", "--filter", project) == ""
    assert stack.run_containers() == []
    volumes = stack.docker("volume", "ls", "-q").split()
    assert [v for v in volumes if v.startswith("lake_assets")] == []
    assert "lake_assets" not in stack.docker("network", "ls", "--format", "{{.Name}}").split()
