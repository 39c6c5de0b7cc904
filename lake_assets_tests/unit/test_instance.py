"""Tier 1: the instance helpers: dead run workers are told from live ones, an instance folder is
created once under a lock, and a corrupted one is refused saying how to recover."""

import os
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pytest

from lake_assets import instance as inst
from lake_assets_tests.conftest import REPO  # noqa: E402

CONFIG = REPO / "dagster_home" / "dagster.yaml"


def test_process_alive():
    assert inst.process_alive(os.getpid(), time.time())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not inst.process_alive(child.pid, time.time())
    # A live pid that started after the worker was recorded is not that worker.
    assert not inst.process_alive(os.getpid(), time.time() - 3600 * 24 * 365 * 30)


def test_parallel_prepares_create_one_healthy_instance(tmp_path):
    home = tmp_path / "home"
    with ThreadPoolExecutor(6) as pool:
        said = list(pool.map(lambda _: inst.prepare(home, CONFIG), range(6)))
    assert said.count(f"instance created in {home}") == 1
    assert said.count(f"instance ready in {home}") == 5
    assert (home / "dagster.yaml").read_text() == CONFIG.read_text()
    heads = inst._sqlite_heads(home)
    assert heads and all(n == 1 for _, n in heads), heads


def test_a_corrupted_instance_is_refused_with_the_way_out(tmp_path):
    home = tmp_path / "home"
    inst.prepare(home, CONFIG)
    con = sqlite3.connect(home / "history" / "runs.db")
    # What two processes stamping a fresh database at once leave: two schema revisions.
    con.execute("INSERT INTO alembic_version VALUES ('000000000000')")
    con.commit()
    con.close()
    with pytest.raises(inst.InstanceError) as info:
        inst.prepare(home, CONFIG)
    text = str(info.value)
    assert text.startswith(f"DAGSTER_HOME={home} is corrupted: history/runs.db (2 versions).")
    assert "mv history schedules broken-" in text
    assert f"python -m lake_assets.instance prepare --home {home}" in text


def test_the_shipped_instance_config_loads_the_launcher_and_monitoring(tmp_path):
    home = tmp_path / "home"
    inst.prepare(home, CONFIG)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_launcher, inst.LocalRunLauncher)
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
        assert instance.event_log_storage.supports_global_concurrency_limits


@pytest.mark.cli
def test_the_worker_pid_is_found_in_a_real_runs_events(tmp_path):
    """The launcher's health check reads the worker's pid from the engine event Dagster writes
    when the multiprocess executor starts; a Dagster upgrade that rewords it fails here."""
    from pathlib import Path

    from lake_dev import generator

    home = tmp_path / "home"
    inst.prepare(home, CONFIG)
    zones = generator.write_zones(tmp_path / "zones.csv")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "TLC_ZONES_URL": Path(zones).resolve().as_uri(),
        "LAKE_DIR": str(tmp_path / "lake"),
        "DUCKDB_PATH": str(tmp_path / "w.duckdb"),
    }
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.Popen(
        [str(dagster), "asset", "materialize", "-m", "lake_assets.definitions"]
        + ["--select", "raw/taxi_zones"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert proc.wait(300) == 0
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        found = inst._worker_pid(instance, run.run_id)
    assert found is not None and found[0] == proc.pid
