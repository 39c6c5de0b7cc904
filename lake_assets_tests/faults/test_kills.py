"""kill -9 of a whole `dagster asset materialize` run during the download, the conversion and
the warehouse load; then the same command again must leave raw, lake and warehouse consistent
with exact counts, and nothing of the killed run behind."""

from __future__ import annotations

import subprocess
import time

import dagster as dg
import pytest

from lake_assets_tests.faults.conftest import BIN, kill_group, wait_for
from lake_assets_tests.helpers import hold_duckdb_lock, sha256_of, trip_selection

pytestmark = pytest.mark.faults

YELLOW = trip_selection("yellow")


def _land_good(stack, month: str, rows: int) -> str:
    stack.publish("yellow", month, rows)
    code, out = stack.run(YELLOW, month)
    assert code == 0, out[-3000:]
    assert stack.warehouse_rows("yellow_tripdata", month) == rows
    return sha256_of(stack.raw_file("yellow", month))


def _assert_previous_good(stack, month: str, rows: int, raw_sha: str) -> None:
    assert stack.warehouse_rows("yellow_tripdata", month) == rows
    assert stack.lake_rows("yellow", month) == rows
    assert sha256_of(stack.raw_file("yellow", month)) == raw_sha


def _assert_converged(stack, month: str, rows: int, source) -> None:
    code, out = stack.run(YELLOW, month)
    assert code == 0, out[-3000:]
    assert stack.warehouse_rows("yellow_tripdata", month) == rows
    assert stack.lake_rows("yellow", month) == rows
    assert sha256_of(stack.raw_file("yellow", month)) == sha256_of(source)
    assert stack.scratch() == [], "the killed run's scratch is still there"


def test_kill_during_the_download(stack):
    good = _land_good(stack, "2021-02", 100)
    source = stack.publish("yellow", "2021-02", 20000)
    path = "/yellow/yellow_tripdata_2021-02.csv.gz"
    stack.server.behaviour.faults[path] = "trickle"
    stack.server.behaviour.fault_seconds = 120
    hits = stack.server.behaviour.hits.get(path, 0)
    proc = stack.start(YELLOW, "2021-02", "killed.log")
    wait_for(lambda: stack.server.behaviour.hits.get(path, 0) > hits, 120, "the download")
    wait_for(lambda: any((d / "download").exists() for d in stack.scratch()), 30, "bytes on disk")
    kill_group(proc)
    assert stack.scratch(), "kill -9 should leave the download's scratch folder"
    _assert_previous_good(stack, "2021-02", 100, good)
    del stack.server.behaviour.faults[path]
    _assert_converged(stack, "2021-02", 20000, source)


def test_kill_during_the_conversion(stack, big_month):
    good = _land_good(stack, "2021-03", 100)
    source = stack.publish("yellow", "2021-03", 0, big_month)
    proc = stack.start(YELLOW, "2021-03", "killed.log")
    wait_for(
        lambda: list((stack.lake / ".staging").rglob("*.inprogress")),
        240,
        "DuckDB writing the Parquet file",
    )
    kill_group(proc)
    assert list((stack.lake / ".staging").rglob("*.inprogress"))
    _assert_previous_good(stack, "2021-03", 100, good)
    # The new file waits as a candidate; the good one was never replaced.
    assert (stack.lake / "raw/yellow_tripdata/candidate/yellow_tripdata_2021-03.csv.gz").exists()
    _assert_converged(stack, "2021-03", 1_000_000, source)


def _kill_in_the_warehouse_step(stack, big_month):
    """A big 2021-03 published and a CLI run of it killed (-9) in its warehouse step, while it
    holds the warehouse slot and waits for the DuckDB file another process (a reader, say)
    holds: a kill at a known point, so what each layer holds afterwards is known exactly. The
    published file."""
    source = stack.publish("yellow", "2021-03", 0, big_month)
    reader = hold_duckdb_lock(str(stack.duckdb_path), 600)
    try:
        proc = stack.start(YELLOW, "2021-03", "killed.log")
        wait_for(
            lambda: (
                "is locked by another process (a reader or a writer)" in stack.log("killed.log")
            ),
            300,
            "the warehouse step waiting for the DuckDB file",
        )
        kill_group(proc)
    finally:
        reader.kill()
        reader.wait()
    return source


def _pool_claims(home) -> list:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots)


def _run_status(home, run_id: str):
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(run_id)
        return run.status if run else None


def test_kill_in_the_warehouse_step_frees_the_pool_and_converges(stack, big_month):
    """Under the shipped dagster.yaml: the daemon's run monitoring fails the killed run and
    frees its `warehouse` slot, so the next run is not blocked by the limit for good."""
    good = _land_good(stack, "2021-03", 100)
    daemon_log = open(stack.root / "daemon.log", "wb")  # noqa: SIM115
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", "lake_assets.definitions"],
        env=stack.env(),
        stdout=daemon_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    daemon_log.close()
    stack.procs.append(daemon)
    source = _kill_in_the_warehouse_step(stack, big_month)
    # Killed before its transaction: the warehouse keeps the old month, the lake has the new.
    assert stack.warehouse_rows("yellow_tripdata", "2021-03") == 100
    assert stack.lake_rows("yellow", "2021-03") == 1_000_000
    claims = _pool_claims(stack.home)
    assert claims, "the killed run should still hold its warehouse slot"
    run_id = claims[0].run_id
    assert _run_status(stack.home, run_id) == dg.DagsterRunStatus.STARTED
    killed_at = time.monotonic()
    wait_for(
        lambda: _run_status(stack.home, run_id) == dg.DagsterRunStatus.FAILURE,
        120,
        "run monitoring to fail the killed run",
    )
    wait_for(lambda: not _pool_claims(stack.home), 120, "the warehouse slot to be freed")
    freed_after = time.monotonic() - killed_at
    print(f"killed run failed and its slot freed {freed_after:.1f} s after kill -9")
    with dg.DagsterInstance.from_config(str(stack.home)) as instance:
        failure = [
            e
            for e in instance.all_logs(run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"
        ]
    assert failure and "is gone: it was killed or crashed" in failure[0].dagster_event.message
    _assert_converged(stack, "2021-03", 1_000_000, source)
    assert sha256_of(stack.raw_file("yellow", "2021-03")) != good


def test_without_a_daemon_the_next_cli_run_frees_a_killed_runs_slot(stack, big_month):
    """No daemon, so no run monitoring: the next CLI run frees the warehouse slot the killed
    run held (its worker is gone) instead of waiting for it forever, and says so."""
    _land_good(stack, "2021-03", 100)
    source = _kill_in_the_warehouse_step(stack, big_month)
    (claim,) = _pool_claims(stack.home)
    assert _run_status(stack.home, claim.run_id) == dg.DagsterRunStatus.STARTED
    code, out = stack.run(YELLOW, "2021-03")
    assert code == 0, out[-3000:]
    assert f"run {claim.run_id} held a slot of pool warehouse but its worker (pid " in out
    assert _run_status(stack.home, claim.run_id) == dg.DagsterRunStatus.FAILURE
    assert _pool_claims(stack.home) == []
    assert stack.warehouse_rows("yellow_tripdata", "2021-03") == 1_000_000
    assert sha256_of(stack.raw_file("yellow", "2021-03")) == sha256_of(source)
