"""`make dev` (`dg dev`, with no superseded-command warning) as a user stops it: a month run
through the UI's GraphQL API, then one Ctrl-C (a SIGINT to the process group, as a terminal sends
it): every process of the stack is gone within 10 s, the run workers' multiprocessing helpers
included."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from datetime import date

import psutil
import pytest

from lake_assets_tests.conftest import REPO
from lake_assets_tests.helpers import poll
from lake_dev import generator

pytestmark = pytest.mark.deploy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())["data"]


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


LAUNCH = """mutation { launchPartitionBackfill(backfillParams: {
  selector: {partitionSetName: "all_tripdata_job_partition_set",
             repositorySelector: {repositoryName: "__repository__",
                                  repositoryLocationName: "lake_assets"}},
  partitionNames: ["2021-01"]}) { __typename } }"""
RUNS = "{ runsOrError { ... on Runs { results { status } } } }"


def test_make_dev_stops_on_one_ctrl_c_after_a_run(tmp_path):
    generator.write_mirror(tmp_path / "mirror", ("yellow", "green", "fhv"), [date(2021, 1, 1)], {
        "yellow": 500, "green": 100, "fhv": 200,
    })  # fmt: skip
    port = _free_port()
    log = open(tmp_path / "dev.log", "wb")  # noqa: SIM115 - the child holds it
    proc = subprocess.Popen(
        ["make", "dev", f"DEMO_DIR={tmp_path}", f"INSTANCE={tmp_path / 'home'}"]
        + ["DEMO_MONTHS=2021-01", f"DEV_PORT={port}"],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:

        def up() -> bool:
            try:
                return "version" in _graphql(port, "{ version }")
            except OSError:
                return False

        assert poll(up, 180, 1), (tmp_path / "dev.log").read_text()[-3000:]
        assert _graphql(port, LAUNCH)["launchPartitionBackfill"]["__typename"] == (
            "LaunchBackfillSuccess"
        )

        def ended() -> list[str]:
            runs = _graphql(port, RUNS)["runsOrError"]["results"]
            done = [r["status"] for r in runs if r["status"] in ("SUCCESS", "FAILURE")]
            return done if runs and len(done) == len(runs) else []

        assert poll(ended, 300, 2) == ["SUCCESS"]
        stack = [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
        os.killpg(proc.pid, signal.SIGINT)
        stopped_at = time.monotonic()
        gone = poll(lambda: not _alive(stack), 10, 0.2)
        assert gone, [psutil.Process(p).cmdline()[:4] for p in _alive(stack)]
        print(f"make dev: every process gone {time.monotonic() - stopped_at:.1f} s after Ctrl-C")
        output = (tmp_path / "dev.log").read_text()
        assert f"\ndg dev -p {port}  (the UI on http://127.0.0.1:{port};" in f"\n{output}", output
        assert "superseded" not in output, output
    finally:
        for pid in _alive([proc.pid, *(c.pid for c in _children(proc.pid))]):
            os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
