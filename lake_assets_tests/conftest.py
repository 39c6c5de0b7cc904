"""Shared fixtures: a real HTTP server on 127.0.0.1, generated months, the real TLC samples."""

from __future__ import annotations

import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from lake_assets.definitions import build_definitions
from lake_assets.settings import Settings
from lake_dev import generator

REPO = Path(__file__).resolve().parent.parent
# Where the real TLC samples are: TLC_SAMPLES_DIR, else ../shared/data/tlc beside the repo.
SAMPLES_DIR = Path(os.environ.get("TLC_SAMPLES_DIR") or REPO.parent / "shared" / "data" / "tlc")
SOURCE_TEMPLATE = "{service}/{service}_tripdata_{year}-{month}.csv.gz"


@pytest.fixture(scope="session")
def samples() -> Path:
    if not (SAMPLES_DIR / "PROVENANCE.md").is_file():
        pytest.skip(
            f"real TLC samples not found at {SAMPLES_DIR} (set TLC_SAMPLES_DIR to the folder "
            "holding PROVENANCE.md and the *.sample.csv.gz files)"
        )
    return SAMPLES_DIR


@dataclass
class Behaviour:
    """Per-path overrides the test server applies before serving files."""

    root: Path
    status: dict[str, list[int]] = field(default_factory=dict)  # path -> statuses to answer first
    hits: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, dict]] = field(default_factory=list)  # method, path, headers
    # Serve without Last-Modified and ignore If-Modified-Since, like servers that send neither
    # validator: the client must then compare sizes and hashes itself.
    no_validators: bool = False
    # path -> how the server misbehaves on GET: "cut" (half the body of the Content-Length it
    # announced, then close), "hang" (headers, then silence), "trickle" (a few bytes a second),
    # "html" (200 with an HTML error page).
    faults: dict[str, str] = field(default_factory=dict)
    # How long "hang" stays silent, and "trickle" keeps trickling, at most.
    fault_seconds: float = 30.0
    # Send an ETag (the file's sha256) and answer If-None-Match with 304, like object stores.
    etags: bool = False
    # path -> the Location of a 302 answered instead of the file.
    redirects: dict[str, str] = field(default_factory=dict)


class _Handler(http.server.SimpleHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, *args) -> None:  # keep pytest output readable
        pass

    def send_header(self, keyword: str, value: str) -> None:
        if self.behaviour.no_validators and keyword.lower() == "last-modified":
            return
        super().send_header(keyword, value)

    def _override(self) -> bool:
        path = self.path.split("?")[0]
        self.behaviour.hits[path] = self.behaviour.hits.get(path, 0) + 1
        self.behaviour.requests.append((self.command, path, dict(self.headers)))
        if self.behaviour.no_validators:
            del self.headers["If-Modified-Since"]
        if path in self.behaviour.redirects:
            self.send_response(302)
            self.send_header("Location", self.behaviour.redirects[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True
        if self.behaviour.etags and self._etag_matches(path):
            return True
        queue = self.behaviour.status.get(path)
        if queue:
            code = queue.pop(0)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True
        return False

    def _etag(self, path: str) -> str | None:
        import hashlib

        file = self.behaviour.root / path.lstrip("/")
        return f'"{hashlib.sha256(file.read_bytes()).hexdigest()[:16]}"' if file.is_file() else None

    def _etag_matches(self, path: str) -> bool:
        etag = self._etag(path)
        if etag is None or self.headers.get("If-None-Match") != etag:
            return False
        self.send_response(304)
        self.send_header("ETag", etag)
        self.end_headers()
        return True

    def end_headers(self) -> None:
        if self.behaviour.etags and self.command in ("GET", "HEAD"):
            etag = self._etag(self.path.split("?")[0])
            if etag and not any(b"ETag" in h for h in getattr(self, "_headers_buffer", [])):
                super().send_header("ETag", etag)
        super().end_headers()

    def _fault(self) -> bool:
        import time

        path = self.path.split("?")[0]
        mode = self.behaviour.faults.get(path)
        if mode is None:
            return False
        if mode == "html":
            body = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return True
        data = (self.behaviour.root / path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        deadline = time.monotonic() + self.behaviour.fault_seconds
        try:
            if mode == "cut":
                self.wfile.write(data[: len(data) // 2])
            elif mode == "hang":
                self.wfile.flush()
                while time.monotonic() < deadline:
                    time.sleep(0.05)
            elif mode == "trickle":
                for i in range(0, len(data), 16):
                    if time.monotonic() > deadline:
                        break
                    self.wfile.write(data[i : i + 16])
                    self.wfile.flush()
                    time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should
        self.close_connection = True
        return True

    def do_GET(self) -> None:
        if not self._override() and not self._fault():
            super().do_GET()

    def do_HEAD(self) -> None:
        if not self._override():
            super().do_HEAD()


@dataclass
class FileServer:
    root: Path
    url: str
    behaviour: Behaviour

    def put(self, rel: str, data: bytes | Path) -> Path:
        dest = self.root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Path):
            shutil.copyfile(data, dest)
        else:
            dest.write_bytes(data)
        return dest

    def trip_path(self, service: str, month: str) -> Path:
        return self.root / service / f"{service}_tripdata_{month}.csv.gz"

    def publish(self, service: str, month: str, rows: int) -> Path:
        y, m = (int(x) for x in month.split("-"))
        return generator.write_month(service, date(y, m, 1), rows, self.trip_path(service, month))


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "www"
    root.mkdir()
    behaviour = Behaviour(root=root)
    handler = type(
        "Handler",
        (_Handler,),
        {"behaviour": behaviour, "__init__": _handler_init(str(root))},
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FileServer(root, f"http://127.0.0.1:{server.server_address[1]}", behaviour)
    finally:
        server.shutdown()
        server.server_close()


def _handler_init(directory: str):
    def __init__(self, *args, **kwargs):
        http.server.SimpleHTTPRequestHandler.__init__(self, *args, directory=directory, **kwargs)

    return __init__


@pytest.fixture
def settings(tmp_path: Path, http_server: FileServer) -> Settings:
    generator.write_zones(http_server.root / "misc" / "taxi_zone_lookup.csv")
    return Settings(
        tlc_source_url=f"{http_server.url}/{SOURCE_TEMPLATE}",
        tlc_zones_url=f"{http_server.url}/misc/taxi_zone_lookup.csv",
        lake_dir=str(tmp_path / "lake"),
        duckdb_path=str(tmp_path / "warehouse.duckdb"),
        http_timeout=10,
    )


@pytest.fixture
def defs(settings: Settings):
    return build_definitions(settings)


@dataclass
class WebhookReceiver:
    url: str
    posts: list[dict]


class _WebhookHandler(http.server.BaseHTTPRequestHandler):
    posts: list

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        import json

        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.posts.append({"path": self.path, "json": json.loads(body)})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    posts: list[dict] = []
    handler = type("Hook", (_WebhookHandler,), {"posts": posts})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebhookReceiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/B000", posts)
    finally:
        server.shutdown()
        server.server_close()


# --- GCP backend: the emulators, started once per session ------------------------------------


@pytest.fixture(scope="session")
def gcp_emulators(tmp_path_factory):
    """fake-gcs-server and bqemulator on 127.0.0.1, spoken to through the real google clients.

    `make test` builds bqemulator's virtualenv first. Run by hand without it, these tests skip
    saying so; under CI a missing emulator is a failure, not a skip.
    """
    from lake_dev import emulators

    yield from started_or_skipped(
        "GCP emulators",
        lambda: emulators.start(
            tmp_path_factory.mktemp("gcp-emulators"), bqemu_python=os.environ.get("BQEMU_PYTHON")
        ),
    )


def started_or_skipped(what: str, start):
    """Yields what start() started and stops it afterwards. An emulator that cannot start skips
    the tests, saying why, when run by hand; under CI (which installs them all) it fails."""
    from lake_dev import emulators

    try:
        emu = start()
    except emulators.EmulatorError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{what} unavailable: {e}")
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def gcp_settings(
    gcp_emulators, settings: Settings, monkeypatch: pytest.MonkeyPatch, request
) -> Settings:
    """Settings for LAKE_ENV=gcp on the emulators: a fresh bucket and dataset for each test."""
    import re
    import secrets

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    tag = f"{re.sub(r'[^a-z0-9]+', '-', request.node.name.lower())[:30].strip('-')}-"
    tag += secrets.token_hex(3)
    bucket = f"lake-{tag}"
    storage.Client(
        project=gcp_emulators.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcp_emulators.storage_host},
    ).create_bucket(bucket)
    env = {
        "LAKE_ENV": "gcp",
        "GCP_PROJECT": gcp_emulators.project,
        "GCS_BUCKET": bucket,
        "GCS_PREFIX": "tlc",
        "BQ_DATASET": "nyc_taxi_" + tag.replace("-", "_"),
        "STORAGE_EMULATOR_HOST": gcp_emulators.storage_host,
        "BIGQUERY_EMULATOR_HOST": gcp_emulators.bigquery_host,
        "TLC_SOURCE_URL": settings.tlc_source_url,
        "TLC_ZONES_URL": settings.tlc_zones_url,
        "TLC_HTTP_TIMEOUT": "10",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env(env)
