"""`make deploy-local`: the deployment's topology as plain processes, for a laptop and the tests.

PostgreSQL (Debian's server, run as an unprivileged user, data under data/deploy/), then
`dagster instance migrate`, then the code server, `dagster-webserver` and `dagster-daemon run`
as three separate processes with deploy/dagster.yaml and deploy/workspace.yaml: the commands
the containers of deploy/docker-compose.yaml run. Only the run launcher differs: runs start as
local processes (lake_assets.instance.LocalRunLauncher) instead of containers.

    python -m lake_dev.deploy_local start [--dir data/deploy]   # foreground; Ctrl-C stops all
    python -m lake_dev.deploy_local stop [--dir data/deploy]    # stops a backgrounded one
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
PG_USER_NAME = "lake_pg"  # the unprivileged system user the server runs as when we are root
DB_USER, DB_NAME = "dagster", "dagster"
LOCATION = "lake_assets"

# The containers' commands (deploy/docker-compose.yaml), with the ports and workspace as args.
CODE_SERVER = ["dagster", "code-server", "start", "-h", "{host}", "-p", "{grpc_port}", "-m"]
CODE_SERVER += ["lake_assets.definitions"]
WEBSERVER = ["dagster-webserver", "-h", "{host}", "-p", "{ui_port}", "-w", "{workspace}"]
DAEMON = ["dagster-daemon", "run", "-w", "{workspace}"]
MIGRATE = ["dagster", "instance", "migrate"]


class DeployError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stored_secret(path: Path) -> str:
    """A random password generated once into path (0600), for a local stack's database."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(18))
        path.chmod(0o600)
    return path.read_text().strip()


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise DeployError(
            f"PostgreSQL's {name} is not installed: apt-get install postgresql (Debian), "
            "or brew install postgresql"
        )
    return found


def _as_pg_user() -> list[str]:
    """The prefix that runs a command as the database's owner: never root (initdb refuses)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(PG_USER_NAME)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_USER_NAME,
            ],
            check=True,
        )
    return ["runuser", "-u", PG_USER_NAME, "--"]


def _chown_to_pg(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(PG_USER_NAME)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _make_traversable(path: Path) -> list[Path]:
    """Let the database's owner reach path: add search (x, not read) permission for others on
    each ancestor that lacks it (e.g. a 0700 temporary folder of root's). The folders changed."""
    import stat

    changed = []
    if os.geteuid() != 0:
        return changed
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
            changed.append(parent)
    return changed


def instance_yaml() -> dict:
    """deploy/dagster.yaml with the run launcher swapped for local processes; nothing else."""
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    config["run_launcher"] = {"module": "lake_assets.instance", "class": "LocalRunLauncher"}
    return config


@dataclass
class Deployment:
    root: Path
    env: dict[str, str] = field(default_factory=dict)  # the lake's settings (TLC_*, LAKE_*)
    pg_port: int = 54329
    grpc_port: int = 4266
    ui_port: int = 3000
    host: str = "127.0.0.1"
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def pgdata(self) -> Path:
        return self.root / "postgres"

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"

    @property
    def workspace(self) -> Path:
        return DEPLOY / "workspace.yaml"

    def password(self) -> str:
        return stored_secret(self.root / "pg_password")

    def process_env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
        bin_dir = str(Path(sys.executable).parent)
        return {
            **keep,
            **self.env,
            "PATH": f"{bin_dir}{os.pathsep}{keep.get('PATH', '')}",
            "DAGSTER_HOME": str(self.home),
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.pg_port),
            "DAGSTER_PG_USER": DB_USER,
            "DAGSTER_PG_PASSWORD": self.password(),
            "DAGSTER_PG_DB": DB_NAME,
            "DAGSTER_GRPC_HOST": self.host,
            "DAGSTER_GRPC_PORT": str(self.grpc_port),
            "DAGSTER_COMPUTE_LOGS": str(self.root / "logs"),
        }

    def command(self, template: list[str]) -> list[str]:
        values = {
            "host": self.host,
            "grpc_port": self.grpc_port,
            "ui_port": self.ui_port,
            "workspace": self.workspace,
        }
        return [
            str(Path(sys.executable).parent / t) if i == 0 else t.format(**values)
            for i, t in enumerate(template)
        ]

    # --- PostgreSQL ---------------------------------------------------------------------

    def _pg(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*_as_pg_user(), *args], check=check, capture_output=True, text=True)

    def start_postgres(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in _make_traversable(self.root):
            print(f"let {PG_USER_NAME} traverse {folder} (o+x) to reach the database")
        prefix = _as_pg_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self.pgdata.mkdir(exist_ok=True)
            pwfile = self.root / "pg_password.init"
            pwfile.write_text(self.password())
            for p in (self.pgdata, pwfile):
                _chown_to_pg(p)
            self.pgdata.chmod(0o700)
            done = subprocess.run(
                [
                    *prefix,
                    _pg_bin("initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    DB_USER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                ],
                capture_output=True,
                text=True,
            )
            pwfile.unlink()
            if done.returncode:
                raise DeployError(f"initdb failed: {done.stderr[-2000:]}")
        log = self.root / "postgres.log"
        if not log.exists():
            log.touch()
        _chown_to_pg(log)
        started = subprocess.run(
            [
                *prefix,
                _pg_bin("pg_ctl"),
                "-D",
                str(self.pgdata),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "-o",
                # TCP only: a Unix socket's path is too long under deep temporary folders.
                f"-p {self.pg_port} -k '' -c listen_addresses={self.host}",
                "start",
            ],
            capture_output=True,
            text=True,
        )
        if started.returncode and "another server might be running" not in started.stderr:
            raise DeployError(f"PostgreSQL did not start: {started.stderr[-2000:]}\n{log}")
        found = self._psql("-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'")
        if found.strip() != "1":
            self._psql("-c", f"CREATE DATABASE {DB_NAME}")

    def _psql(self, flag: str, sql: str) -> str:
        """One statement against the server's postgres database, over TCP with the password."""
        done = subprocess.run(
            [
                "psql",
                "-h",
                self.host,
                "-p",
                str(self.pg_port),
                "-U",
                DB_USER,
                "-d",
                "postgres",
                flag,
                sql,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": self.password()},
            check=True,
        )
        return done.stdout

    def stop_postgres(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self._pg(
                _pg_bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop", check=False
            )

    # --- Dagster ------------------------------------------------------------------------

    def write_instance(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        (self.home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml(), sort_keys=False))

    def migrate(self) -> str:
        done = subprocess.run(
            self.command(MIGRATE), env=self.process_env(), capture_output=True, text=True
        )
        if done.returncode:
            raise DeployError(f"dagster instance migrate failed:\n{done.stdout}{done.stderr}")
        return done.stdout + done.stderr

    def spawn(self, name: str) -> subprocess.Popen:
        template = {"code_server": CODE_SERVER, "webserver": WEBSERVER, "daemon": DAEMON}[name]
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        proc = subprocess.Popen(
            self.command(template),
            env=self.process_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,  # Ctrl-C reaches us, and we stop them in order
        )
        log.close()
        self.procs[name] = proc
        self._save()
        return proc

    def wait_ready(self, name: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                tail = (self.root / f"{name}.log").read_text(errors="replace")[-3000:]
                raise DeployError(f"{name} exited with {proc.returncode}:\n{tail}")
            if name == "code_server" and _listening(self.host, self.grpc_port):
                return
            if name == "webserver" and http_ok(f"{self.url}/server_info"):
                return
            if name == "daemon" and self._daemon_started():
                return
            time.sleep(0.5)
        raise DeployError(f"{name} was not ready after {timeout:.0f} s; see {self.root}/{name}.log")

    def _daemon_started(self) -> bool:
        """The daemon has listed its daemons in its log, which it does once it has started."""
        log = self.root / "daemon.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return "Instance is configured with the following daemons" in text

    def start(self) -> None:
        self.start_postgres()
        self.write_instance()
        self.migrate()
        for name in ("code_server", "webserver", "daemon"):
            self.spawn(name)
            self.wait_ready(name)

    def stop_process(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        self._save()

    def stop(self) -> None:
        for name in ("daemon", "webserver", "code_server"):
            self.stop_process(name)
        self.stop_postgres()
        (self.root / "state.json").unlink(missing_ok=True)

    def _save(self) -> None:
        state = {
            "launcher": os.getpid(),
            "pids": {n: p.pid for n, p in self.procs.items()},
            "pgdata": str(self.pgdata),
        }
        (self.root / "state.json").write_text(json.dumps(state))


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_from_state(root: Path) -> str:
    """`make deploy-stop`: end the processes a backgrounded deploy-local started, then Postgres."""
    state_file = root / "state.json"
    if not state_file.exists():
        return f"nothing to stop in {root}"
    state = json.loads(state_file.read_text())
    launcher = state.get("launcher")
    if launcher and _alive(launcher):
        # The launcher stops its processes in order, then PostgreSQL, as on Ctrl-C.
        os.kill(launcher, signal.SIGTERM)
        deadline = time.monotonic() + 90
        while _alive(launcher) and time.monotonic() < deadline:
            time.sleep(0.2)
    groups = [pid for pid in state["pids"].values() if _group_alive(pid)]
    for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        for pid in groups:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while groups and time.monotonic() < deadline:
            groups = [pid for pid in groups if _group_alive(pid)]
            time.sleep(0.2)
        if not groups:
            break
    Deployment(root).stop_postgres()
    state_file.unlink(missing_ok=True)
    return f"stopped the deployment in {root}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lake_dev.deploy_local")
    parser.add_argument("command", choices=("start", "stop"))
    parser.add_argument("--dir", default="data/deploy", help="PostgreSQL data, instance, logs")
    parser.add_argument("--ui-port", type=int, default=3000)
    parser.add_argument("--grpc-port", type=int, default=4266)
    parser.add_argument("--pg-port", type=int, default=54329)
    args = parser.parse_args(argv)
    root = Path(args.dir).resolve()
    if args.command == "stop":
        print(stop_from_state(root))
        return 0
    lake = {k: v for k, v in os.environ.items() if k.startswith(("TLC_", "LAKE_", "DUCKDB_"))}
    deployment = Deployment(
        root, lake, pg_port=args.pg_port, grpc_port=args.grpc_port, ui_port=args.ui_port
    )
    # Ctrl-C and `kill` stop everything through the finally below, also when this was started
    # in the background (where a shell hands SIGINT over ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        print(f"PostgreSQL on {deployment.host}:{deployment.pg_port} (data in {deployment.pgdata})")
        deployment.start()
        print(f"code server on {deployment.host}:{deployment.grpc_port}, daemon running")
        print(f"Dagster UI: {deployment.url}   (Ctrl-C stops all; logs in {root})", flush=True)
        while all(p.poll() is None for p in deployment.procs.values()):
            time.sleep(1)
        dead = [n for n, p in deployment.procs.items() if p.poll() is not None]
        print(f"{', '.join(dead)} exited; see {root}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except DeployError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        deployment.stop()


if __name__ == "__main__":
    sys.exit(main())
