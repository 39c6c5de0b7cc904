"""The Dagster CLI as a user runs it, in subprocesses: parallel backfills and definition checks."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from lake_assets_tests.conftest import REPO
from lake_assets_tests.helpers import hold_duckdb_lock, month_counts, trip_selection

pytestmark = pytest.mark.cli
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _env(settings, dagster_home: Path) -> dict[str, str]:
    dagster_home.mkdir(parents=True, exist_ok=True)
    # Create the instance's SQLite storage once: Dagster's own schema set-up is not safe when
    # several processes open a brand-new DAGSTER_HOME at the same moment.
    dg.DagsterInstance.from_config(str(dagster_home)).dispose()
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(dagster_home),
        TLC_SOURCE_URL=settings.tlc_source_url,
        TLC_ZONES_URL=settings.tlc_zones_url,
        LAKE_DIR=settings.lake_dir,
        DUCKDB_PATH=settings.duckdb_path,
        LAKE_ENV="local",
    )
    return env


def _materialize(env, select: list[str], partition: str, log: Path | None = None):
    """Start `dagster asset materialize`; its output goes to log (a file) or to a pipe."""
    cmd = [DAGSTER, "asset", "materialize", "-m", "lake_assets.definitions"]
    cmd += ["--select", ",".join(select), "--partition", partition]
    if log is None:
        return subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait(proc: subprocess.Popen, log: Path | None = None) -> str:
    out, _ = proc.communicate(timeout=300)
    if log is not None:
        out = log.read_text()
    assert proc.returncode == 0, out[-6000:]
    return out


WAITING = "is locked by another process (a reader or a writer); waiting up to"


def test_parallel_backfill_without_pool_limits_never_hits_a_lock(http_server, settings, tmp_path):
    """A fresh DAGSTER_HOME has no pool limits: only the writer's lock wait keeps this safe."""
    months = ["2020-01", "2020-02", "2020-03", "2020-04"]
    for i, month in enumerate(months):
        http_server.publish("yellow", month, 20000 + i)
    env = _env(settings, tmp_path / "fresh_home")
    # Another process holds the warehouse file until every run's warehouse step is waiting for
    # it; then the four runs race each other for the lock.
    holder = hold_duckdb_lock(settings.duckdb_path, seconds=600)
    logs = [tmp_path / f"run_{m}.log" for m in months]
    procs = [
        _materialize(env, trip_selection("yellow"), m, log)
        for m, log in zip(months, logs, strict=True)
    ]
    try:
        deadline = time.monotonic() + 240
        while not all(WAITING in log.read_text() for log in logs):
            assert time.monotonic() < deadline, "not every run reached the locked warehouse"
            assert all(p.poll() is None for p in procs), "a run ended before its warehouse step"
            time.sleep(0.2)
    finally:
        holder.kill()
        holder.wait()
    outputs = [_wait(p, log) for p, log in zip(procs, logs, strict=True)]
    assert not any("stayed locked by another process" in o for o in outputs)
    assert month_counts(settings.duckdb_path, "yellow_tripdata") == {
        m: 20000 + i for i, m in enumerate(months)
    }


def test_one_month_of_every_service_in_one_multiprocess_run(http_server, settings, tmp_path):
    """Three warehouse steps in one run, with the shipped dagster.yaml (warehouse pool of 1)."""
    for service, rows in (("yellow", 5000), ("green", 1000), ("fhv", 3000)):
        http_server.publish(service, "2021-07", rows)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    out = _wait(_materialize(_env(settings, home), trip_selection(), "2021-07"))
    assert "RUN_SUCCESS" in out
    assert "Executing steps using multiprocess executor" in out
    # The run starts its writers one after another itself: none is turned away by the pool.
    assert "blocked by limit for pool" not in out
    for service, rows in (("yellow", 5000), ("green", 1000), ("fhv", 3000)):
        assert month_counts(settings.duckdb_path, f"{service}_tripdata") == {"2021-07": rows}
    # The marts take a range of months in one run.
    marts = "marts/trips_by_zone_monthly,marts/service_summary_monthly"
    proc = _materialize_range(settings, tmp_path, marts, "2021-06...2021-07")
    assert (proc.stdout + proc.stderr).count("RUN_SUCCESS") == 1
    assert month_counts(settings.duckdb_path, "service_summary_monthly") == {
        "2021-06": 3,
        "2021-07": 3,
    }
    # So do the lake and warehouse steps, once the raw files are landed.
    http_server.publish("green", "2021-06", 700)
    landed = _wait(_materialize(_env(settings, home), ["raw/green_tripdata"], "2021-06"))
    assert "RUN_SUCCESS" in landed
    steps = "lake/green_tripdata,warehouse/green_tripdata"
    proc = _materialize_range(settings, tmp_path, steps, "2021-06...2021-07")
    assert (proc.stdout + proc.stderr).count("RUN_SUCCESS") == 1, proc.stderr[-3000:]
    assert month_counts(settings.duckdb_path, "green_tripdata") == {"2021-06": 700, "2021-07": 1000}


def _materialize_range(settings, tmp_path, select: str, partitions: str):
    args = ["asset", "materialize", "-m", "lake_assets.definitions", "--select", select]
    return _dagster(settings, tmp_path, *args, "--partition-range", partitions)


def _dagster(settings, tmp_path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [DAGSTER, *args],
        cwd=REPO,
        env=_env(settings, tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_definitions_validate_from_the_workspace(settings, tmp_path):
    proc = _dagster(settings, tmp_path, "definitions", "validate", "-w", "workspace.yaml")
    assert "lake_assets" in proc.stdout + proc.stderr


def test_asset_list_shows_the_graph(settings, tmp_path):
    proc = _dagster(settings, tmp_path, "asset", "list", "-m", "lake_assets.definitions")
    listed = set(proc.stdout.split())
    assert {"raw/yellow_tripdata", "lake/fhv_tripdata", "warehouse/taxi_zones"} <= listed
