"""The fault suite's stack: the real `dagster` CLI in subprocesses (each in its own process
group, so kill -9 takes the whole run with its step processes), on a lake, a DuckDB file and a
Dagster instance in tmp_path, fed by the test HTTP server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from lake_assets import instance
from lake_assets_tests.conftest import REPO, SOURCE_TEMPLATE, FileServer
from lake_assets_tests.helpers import poll
from lake_dev import generator

BIN = Path(sys.executable).parent
CONFIG = REPO / "dagster_home" / "dagster.yaml"


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    value = poll(condition, timeout, 0.05)
    if not value:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return value


def kill_group(proc: subprocess.Popen) -> None:
    """kill -9 of the process and everything it started (its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@dataclass
class Stack:
    root: Path
    server: FileServer
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def duckdb_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("TLC_", "LAKE_", "GCP"))}
        return {
            **keep,
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "DAGSTER_HOME": str(self.home),
            "TLC_SOURCE_URL": f"{self.server.url}/{SOURCE_TEMPLATE}",
            "TLC_ZONES_URL": f"{self.server.url}/misc/taxi_zone_lookup.csv",
            "LAKE_DIR": str(self.lake),
            "DUCKDB_PATH": str(self.duckdb_path),
            "TLC_HTTP_TIMEOUT": "10",
            **self.extra_env,
        }

    def command(self, selection: list[str], partition: str) -> list[str]:
        return [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "lake_assets.definitions",
            "--select",
            ",".join(selection),
            "--partition",
            partition,
        ]

    def start(self, selection: list[str], partition: str, log: str) -> subprocess.Popen:
        out = open(self.root / log, "wb")  # noqa: SIM115 - the child holds it
        proc = subprocess.Popen(
            self.command(selection, partition),
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        self.procs.append(proc)
        return proc

    def run(self, selection: list[str], partition: str, timeout: float = 300) -> tuple[int, str]:
        log = f"run-{len(self.procs)}.log"
        proc = self.start(selection, partition, log)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise
        return code, (self.root / log).read_text(errors="replace")

    def log(self, name: str) -> str:
        path = self.root / name
        return path.read_text(errors="replace") if path.exists() else ""

    def publish(self, service: str, month: str, rows: int, source: Path | None = None) -> Path:
        """Put a month on the server with a Last-Modified later than any before it."""
        dest = self.server.trip_path(service, month)
        if source is not None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
        else:
            self.server.publish(service, month, rows)
        later = time.time() + 60 * (len(self.procs) + 1)
        os.utime(dest, (later, later))
        return dest

    def warehouse_rows(self, table: str, month: str) -> int | None:
        if not self.duckdb_path.exists():
            return None
        con = duckdb.connect(str(self.duckdb_path), read_only=True)
        try:
            (n,) = con.execute(
                f"SELECT count(*) FROM nyc_taxi.{table} WHERE source_month = ?",
                [date.fromisoformat(f"{month}-01")],
            ).fetchone()
        finally:
            con.close()
        return int(n)

    def lake_rows(self, service: str, month: str) -> int | None:
        path = self.lake / f"lake/{service}_tripdata/{service}_tripdata_{month}.parquet"
        return pq.ParquetFile(path).metadata.num_rows if path.exists() else None

    def raw_file(self, service: str, month: str) -> Path:
        return self.lake / f"raw/{service}_tripdata/{service}_tripdata_{month}.csv.gz"

    def scratch(self) -> list[Path]:
        staging = self.lake / ".staging"
        return sorted(staging.iterdir()) if staging.exists() else []

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                kill_group(proc)


@pytest.fixture
def stack(tmp_path: Path, http_server: FileServer) -> Iterator[Stack]:
    generator.write_zones(http_server.root / "misc" / "taxi_zone_lookup.csv")
    s = Stack(tmp_path / "stack", http_server)
    s.root.mkdir()
    instance.prepare(s.home, CONFIG)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def big_month(tmp_path_factory) -> Path:
    """A yellow month of 1,000,000 rows (20 MB gzipped), generated once per session: big
    enough that its conversion and load take long enough to be killed in the middle."""
    path = tmp_path_factory.mktemp("big") / "yellow_tripdata_2021-03.csv.gz"
    return generator.write_month("yellow", date(2021, 3, 1), 1_000_000, path)
