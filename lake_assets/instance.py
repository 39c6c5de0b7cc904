"""The Dagster instance side of lake_assets: a run launcher whose dead runs are detected, and the
one-time creation of an instance folder before anything runs in parallel.

Dagster's run monitoring (the daemon's `run_monitoring:` settings) marks a run failed when its
launcher says the run's worker is gone, and then frees the concurrency slots it held. The
default launcher cannot say so, so a run killed with kill -9 stayed STARTED and kept the
`warehouse` pool's slot for good. LocalRunLauncher is the default launcher plus that health
check: the worker's pid, which every run records in its event log, must still be alive on this
machine. Container deployments use DockerRunLauncher or K8sRunLauncher, which have their own.

`python -m lake_assets.instance prepare` (run by every make target first) creates or migrates
the instance under a file lock, and refuses a folder that parallel first runs have corrupted,
saying how to recover.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._serdes import ConfigurableClassData

# Engine events that name the run worker's own process (not a step's).
_WORKER_MESSAGES = (
    "Started process for run (pid:",
    "Executing steps using multiprocess executor: parent process (pid:",
)
LOCK_NAME = ".lake_assets-instance.lock"


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid of the run's latest worker process and when it said so."""
    found = None
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        if event is None or not (event.message or "").startswith(_WORKER_MESSAGES):
            continue
        data = event.event_specific_data
        pid = data.metadata.get("pid") if data and data.metadata else None
        if pid is not None and str(pid.value).isdigit():
            found = (int(pid.value), entry.timestamp)
    return found


def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def process_alive(pid: int, seen_at: float) -> bool:
    """Whether pid is a live process that was already running at seen_at (a pid the kernel
    handed to a newer process, or a zombie, is a dead worker)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return True  # no /proc (macOS): a live pid is all we can know
    if fields[0] in ("Z", "X"):
        return False
    boot = _boot_time()
    if boot is None:
        return True
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return started <= seen_at + 1.0


class LocalRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose run workers the daemon's run monitoring can check.

    A run whose recorded worker process is gone is reported FAILED, so monitoring fails it and
    frees its pool slots (free_slots_after_run_end_seconds). Only for workers on the machine the
    daemon runs on (dagster dev, make deploy-local)."""

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(inst_data=inst_data)

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> LocalRunLauncher:
        return cls(inst_data=inst_data)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        worker = _worker_pid(self._instance, run.run_id)
        if worker is None:
            # Not started far enough to say (start_timeout_seconds covers runs that never do).
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker recorded yet")
        pid, seen_at = worker
        if process_alive(pid, seen_at):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the run worker process (pid {pid}) is gone: it was killed or crashed",
            run_worker_id=str(pid),
        )


def free_dead_runs_slots(instance: dg.DagsterInstance, pool: str) -> list[str]:
    """What run monitoring does, for a run started without a daemon (the CLI): runs holding a
    slot of pool whose worker process on this machine is gone are failed and their slots
    freed, so the next run does not wait for them forever. One line per run freed.

    Only where runs are processes of this machine (the default launcher and ours): a run in a
    container has a pid of another namespace, and its launcher has health checks of its own."""
    if not isinstance(instance.run_launcher, DefaultRunLauncher):
        return []
    said = []
    for run_id in sorted(
        {s.run_id for s in instance.event_log_storage.get_concurrency_info(pool).claimed_slots}
    ):
        run = instance.get_run_by_id(run_id)
        worker = _worker_pid(instance, run_id)
        if run is None or worker is None or process_alive(*worker):
            continue
        pid = worker[0]
        if not run.is_finished:
            instance.report_run_failed(
                run, f"the run worker process (pid {pid}) is gone: it was killed or crashed"
            )
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        said.append(
            f"run {run_id} held a slot of pool {pool} but its worker (pid {pid}) is gone: "
            "marked failed and its slot freed, as run monitoring would"
        )
    return said


class InstanceError(RuntimeError):
    pass


def _sqlite_heads(home: Path) -> list[tuple[Path, int]]:
    """(database, alembic version rows) of each SQLite storage database under home."""
    found = []
    for db in sorted(home.rglob("*.db")):
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                (rows,) = con.execute("SELECT count(*) FROM alembic_version").fetchone()
            finally:
                con.close()
        except sqlite3.Error:
            continue  # not a storage database, or no version table yet
        found.append((db, int(rows)))
    return found


def check_not_corrupt(home: Path) -> None:
    """Refuse an instance folder whose databases carry several schema versions at once, which
    is what processes that created a fresh folder at the same time leave behind."""
    broken = [(db, n) for db, n in _sqlite_heads(home) if n > 1]
    if broken:
        names = ", ".join(f"{db.relative_to(home)} ({n} versions)" for db, n in broken)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folders = " ".join(sorted({db.relative_to(home).parts[0] for db, _ in _sqlite_heads(home)}))
        raise InstanceError(
            f"DAGSTER_HOME={home} is corrupted: {names}. Several processes created this "
            "instance at the same time, and Dagster will fail every run on it with 'more than "
            "one head present'. Recover by moving its storage aside and creating it once "
            f"(the run history in it is lost): cd {home} && mkdir broken-{stamp} && "
            f"mv {folders} broken-{stamp}/; then create it once with `make instance` (or "
            f"`python -m lake_assets.instance prepare --home {home}`) before starting anything "
            "in parallel."
        )


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    import fcntl

    with open(home / LOCK_NAME, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def prepare(home: Path, config: Path | None = None) -> str:
    """Create (or migrate) the instance in home exactly once, whoever else calls this at the
    same time; raise InstanceError for a corrupted one. What was done, for the log.

    config: a dagster.yaml to put in home when it has none."""
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    with _locked(home):
        target = home / "dagster.yaml"
        if config is not None and not target.exists():
            tmp = home / ".dagster.yaml.tmp"
            tmp.write_bytes(config.read_bytes())
            os.replace(tmp, target)
        check_not_corrupt(home)
        fresh = not any(home.rglob("*.db"))
        with dg.DagsterInstance.from_config(str(home)) as instance:
            if not fresh:
                instance.upgrade()
            # Touch every storage so each creates its tables now, under the lock.
            instance.get_runs(limit=1)
            instance.all_instigator_state()
            instance.event_log_storage.get_event_records(
                dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_MATERIALIZATION),
                limit=1,
            )
        check_not_corrupt(home)
    return f"instance {'created' if fresh else 'ready'} in {home}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lake_assets.instance")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="create or migrate $DAGSTER_HOME once, under a lock")
    p.add_argument("--home", required=True, help="the instance folder (DAGSTER_HOME)")
    p.add_argument("--config", help="dagster.yaml to copy into the folder when it has none")
    args = parser.parse_args(argv)
    try:
        print(prepare(Path(args.home), Path(args.config) if args.config else None))
    except InstanceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
