"""The containers stage's machine: Debian's Docker daemon started by the test with its own data
root and --iptables=false (no container traffic leaves the machine), stand-ins for the public
base images no registry here serves, and the shipped stack on top (lake_dev.containers, what
`make containers-up` runs).

Only this file, machine.compose.yaml and standins/ know about this machine; deploy/ is used as
shipped."""

from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from lake_dev import generator
from lake_dev.containers import Containers
from lake_dev.deploy_local import REPO, free_port

HERE = Path(__file__).parent
WORK = REPO / "build" / "containers"
MONTHS = ["2021-01", "2021-02", "2021-03", "2021-04"]
ROWS = 2000  # yellow's; the other services' from lake_dev.generator.rows_per_service
# The month Terminate is tried on: big enough that its run is still working when asked to stop.
BIG_MONTH, BIG_ROWS = "2021-04", 4_000_000
# The public images deploy/ builds on, and the Dockerfiles of their stand-ins (standins/).
STANDINS = {
    "python:3.11.7-slim-bookworm": "python.Dockerfile",
    "postgres:15.8-bookworm": "postgres.Dockerfile",
}
# The host's CA bundle: this machine reaches the package index through a TLS proxy.
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def _run(*cmd: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, env=env, text=True, **kwargs)


@dataclass
class Docker:
    host: str
    process: subprocess.Popen

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def __call__(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True)
        if check and result.returncode:
            raise AssertionError(f"docker {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def has_image(self, tag: str) -> bool:
        return bool(self("images", "-q", tag).strip())


def _start_daemon(root: Path) -> Docker:
    if not shutil.which("dockerd"):
        raise RuntimeError("dockerd is not installed: apt-get install docker.io docker-compose")
    # A short exec root: the socket's path must fit in a sockaddr.
    exec_root = Path(tempfile.mkdtemp(prefix="lake-docker-"))
    socket = exec_root / "docker.sock"
    cmd = [
        "dockerd",
        "--iptables=false",
        "--ip-masq=false",
        f"--data-root={root / 'data'}",
        f"--exec-root={exec_root / 'exec'}",
        f"--pidfile={exec_root / 'docker.pid'}",
        f"--host=unix://{socket}",
    ]
    try:
        grp.getgrnam("docker")
        cmd.append("--group=docker")
    except KeyError:
        pass
    log = (root / "dockerd.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
    docker = Docker(f"unix://{socket}", proc)
    deadline = time.monotonic() + 60
    while subprocess.run(["docker", "version"], env=docker.env, capture_output=True).returncode:
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = (root / "dockerd.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"dockerd did not start:\n{tail}")
        time.sleep(0.5)
    return docker


def _stop_daemon(docker: Docker) -> None:
    docker.process.terminate()
    try:
        docker.process.wait(60)
    except subprocess.TimeoutExpired:
        docker.process.kill()
        docker.process.wait()


def _build_standins(docker: Docker) -> None:
    """debootstrap bookworm once, then the two stand-ins on it (each a few Debian packages)."""
    base = "lake-standin/debian:bookworm"
    if not docker.has_image(base):
        rootfs = WORK / "rootfs"
        if not (rootfs / "etc" / "debian_version").exists():
            shutil.rmtree(rootfs, ignore_errors=True)
            _run(
                "debootstrap",
                "--variant=minbase",
                "bookworm",
                str(rootfs),
                "http://deb.debian.org/debian",
                stdout=subprocess.DEVNULL,
            )
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        _run(
            "docker",
            "import",
            "-",
            base,
            env=docker.env,
            stdin=tar.stdout,
            stdout=subprocess.DEVNULL,
        )
        assert tar.wait() == 0
    with tempfile.TemporaryDirectory() as context:
        for f in HERE.joinpath("standins").iterdir():
            shutil.copy(f, context)
        shutil.copy(HOST_CA, Path(context) / "ca-certificates.crt")
        for tag, dockerfile in STANDINS.items():
            if not docker.has_image(tag):
                _run(
                    "docker",
                    "build",
                    "-q",
                    "--network=host",
                    "-t",
                    tag,
                    "-f",
                    str(Path(context, dockerfile)),
                    context,
                    env=docker.env,
                    stdout=subprocess.DEVNULL,
                )


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    WORK.mkdir(parents=True, exist_ok=True)
    daemon = _start_daemon(WORK)
    try:
        _build_standins(daemon)
        yield daemon
    finally:
        _stop_daemon(daemon)


@dataclass
class Stack:
    containers: Containers
    docker: Docker

    def graphql(self, query: str, variables: dict | None = None, readonly: bool = False) -> dict:
        url = self.containers.readonly_url if readonly else self.containers.url
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            data = json.loads(resp.read())
        assert "errors" not in data, data["errors"]
        return data["data"]

    def warehouse_counts(self, table: str) -> dict[str, int]:
        """Rows per month, read from the data volume by a container of the project's image."""
        script = (
            "import duckdb, json;"
            "con = duckdb.connect('/data/warehouse.duckdb', read_only=True);"
            "print(json.dumps(dict(con.execute(\"SELECT strftime(source_month, '%Y-%m'), "
            f'count(*) FROM nyc_taxi.{table} GROUP BY 1").fetchall())))'
        )
        out = self.docker(
            "run",
            "--rm",
            "-v",
            "lake_assets_data:/data",
            "lake_assets:latest",
            "python",
            "-c",
            script,
        )
        return json.loads(out)

    def compute_log_files(self) -> list[str]:
        """Every file in the logs volume, where the runs' step logs outlive their containers."""
        out = self.docker(
            "run",
            "--rm",
            "-v",
            "lake_assets_logs:/logs",
            "lake_assets:latest",
            "find",
            "/logs",
            "-type",
            "f",
        )
        return out.split()

    def run_containers(self) -> list[str]:
        """Every container, running or exited, that the launcher started for a run."""
        return self.docker("ps", "-a", "-q", "--filter", "label=dagster/run_id").split()

    def logs(self) -> str:
        out = []
        for service in ("daemon", "code_server", "webserver"):
            text = self.docker("logs", "--tail", "40", f"lake_assets_{service}_1", check=False)
            out.append(f"--- {service}\n{text}")
        return "\n".join(out)


@pytest.fixture(scope="package")
def stack(docker: Docker) -> Iterator[Stack]:
    root = WORK / "stack"
    shutil.rmtree(root, ignore_errors=True)
    containers = Containers(
        root,
        MONTHS,
        ROWS,
        [HERE / "machine.compose.yaml"],
        ui_port=free_port(),
        readonly_port=free_port(),
    )
    big = date.fromisoformat(f"{BIG_MONTH}-01")
    generator.write_month(
        "yellow",
        big,
        BIG_ROWS,
        containers.mirror / "yellow" / generator.month_file_name("yellow", big),
    )
    saved = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = docker.host
    try:
        # Down first: a stack left by an interrupted run would hold the ports and the volumes.
        containers.down(volumes=True)
        containers.up()
        yield Stack(containers, docker)
        containers.down(volumes=True)
    finally:
        if saved is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = saved
