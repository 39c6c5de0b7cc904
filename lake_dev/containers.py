"""`make containers-up` / `make containers-down`: deploy/docker-compose.yaml as shipped, on the
demo's offline mirror.

The mirror is served to the stack by one more container (`mirror`, Python's http.server from
the project's image, on the compose network); nothing else is added to the shipped file. The
PostgreSQL password is generated once into the stack's folder (0600), never into a file of the
repository. The UIs listen on 127.0.0.1 only.

    python -m lake_dev.containers up [--dir data/containers] [--months 2021-01 ...]
    python -m lake_dev.containers down [--dir data/containers] [--volumes]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from lake_dev import generator
from lake_dev.deploy_local import REPO, http_ok, stored_secret

COMPOSE_FILE = REPO / "deploy" / "docker-compose.yaml"
PROJECT = "lake_assets"
MIRROR_URL = "http://mirror:8080"


class ContainersError(RuntimeError):
    pass


@functools.cache
def compose_command() -> list[str]:
    """Compose v2 (`docker compose`) where the Docker CLI has it, else v1 (`docker-compose`)."""
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    v1 = shutil.which("docker-compose")
    if v1:
        return [v1]
    raise ContainersError("neither `docker compose` nor `docker-compose` is installed")


def docker_socket() -> Path:
    """The daemon's socket: DOCKER_HOST's when it names one, else Docker's default."""
    host = os.environ.get("DOCKER_HOST", "")
    return (
        Path(host.removeprefix("unix://"))
        if host.startswith("unix://")
        else Path("/var/run/docker.sock")
    )


def mirror_override(mirror: Path) -> dict:
    """The one service the demo adds: the mirror, read-only, on the stack's network."""
    return {
        "services": {
            "mirror": {
                "image": "lake_assets:latest",
                "restart": "unless-stopped",
                "command": ["python", "-m", "http.server", "8080", "--directory", "/mirror"],
                "volumes": [f"{mirror}:/mirror:ro"],
                "networks": ["lake_assets"],
            }
        }
    }


@dataclass
class Containers:
    root: Path
    months: list[str] = field(default_factory=lambda: ["2021-01", "2021-02", "2021-03"])
    rows: int = 20000
    overrides: list[Path] = field(default_factory=list)
    ui_port: int = 3000
    readonly_port: int = 3001

    @property
    def mirror(self) -> Path:
        return self.root / "mirror"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def readonly_url(self) -> str:
        return f"http://127.0.0.1:{self.readonly_port}"

    def env(self) -> dict[str, str]:
        """What compose interpolates: the secret, the socket, the ports, the mirror's months."""
        socket_path = docker_socket()
        return {
            **os.environ,
            "DAGSTER_PG_PASSWORD": os.environ.get("DAGSTER_PG_PASSWORD")
            or stored_secret(self.root / "pg_password"),
            "DOCKER_SOCKET": str(socket_path),
            "DOCKER_GID": str(socket_path.stat().st_gid),
            "DAGSTER_UI_PORT": str(self.ui_port),
            "DAGSTER_UI_READONLY_PORT": str(self.readonly_port),
            "TLC_SOURCE_URL": MIRROR_URL + "/{service}/{service}_tripdata_{year}-{month}.csv.gz",
            "TLC_ZONES_URL": f"{MIRROR_URL}/misc/taxi_zone_lookup.csv",
            "TLC_START_MONTH": self.months[0],
            "TLC_END_MONTH": self.months[-1],
        }

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        files = [COMPOSE_FILE, self.root / "mirror.compose.yaml", *self.overrides]
        cmd = [*compose_command(), "-p", PROJECT]
        for f in files:
            cmd += ["-f", str(f)]
        # The project folder stays deploy/: the build context is relative to it.
        cmd += ["--project-directory", str(COMPOSE_FILE.parent), *args]
        return subprocess.run(cmd, env=self.env(), check=check)

    def write_mirror(self) -> None:
        """Generates the months the mirror lacks (a file already there is kept as it is)."""
        rows = generator.rows_per_service(self.rows)
        for service, n in rows.items():
            for month in (date.fromisoformat(f"{m}-01") for m in self.months):
                path = self.mirror / service / generator.month_file_name(service, month)
                if not path.exists():
                    generator.write_month(service, month, n, path)
        zones = self.mirror / "misc" / "taxi_zone_lookup.csv"
        if not zones.exists():
            generator.write_zones(zones)
        # The containers run as uid 10001: the mirror must be world-readable.
        for path in [self.root, *self.mirror.rglob("*"), self.mirror]:
            mode = path.stat().st_mode
            path.chmod(mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))

    def write_override(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "mirror.compose.yaml").write_text(
            yaml.safe_dump(mirror_override(self.mirror.resolve()), sort_keys=False)
        )

    def up(self, build: bool = True, timeout: float = 600) -> None:
        self.write_override()
        self.write_mirror()
        if build:
            # Before `up`: the mirror runs the project's image too, and compose would try to pull
            # it from a registry if it did not exist yet.
            self.compose("build")
        self.compose("up", "-d")
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        for url in (self.url, self.readonly_url):
            while not http_ok(f"{url}/server_info"):
                if time.monotonic() > deadline:
                    raise ContainersError(f"the UI at {url} did not answer in {timeout:.0f} s")
                time.sleep(1)

    def down(self, volumes: bool = False) -> None:
        # Compose needs the mirror's service to stop it, not the mirror's months.
        self.write_override()
        self.compose("down", "--remove-orphans", *(["--volumes"] if volumes else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lake_dev.containers")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, default=REPO / "data" / "containers")
    parser.add_argument("--months", nargs="+", default=["2021-01", "2021-02", "2021-03"])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--override", type=Path, action="append", default=[])
    parser.add_argument("--ui-port", type=int, default=3000)
    parser.add_argument("--readonly-port", type=int, default=3001)
    parser.add_argument("--volumes", action="store_true", help="down: delete the data too")
    args = parser.parse_args(argv)
    stack = Containers(
        args.dir.resolve(), args.months, args.rows, args.override, args.ui_port, args.readonly_port
    )
    try:
        if args.action == "up":
            stack.up()
            print(f"the UI: {stack.url} (read-only: {stack.readonly_url}); months {args.months}")
            print("make containers-down stops it; the data stays in the lake_assets_* volumes")
        else:
            stack.down(volumes=args.volumes)
    except (ContainersError, subprocess.CalledProcessError) as e:
        print(f"containers: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
