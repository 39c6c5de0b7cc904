"""Stream a published file from http(s):// or file:// into a writable binary file.

No Dagster import. The caller owns the destination (an atomic lake writer); this module only moves
bytes, hashes them, and proves a gzip stream is complete before the caller commits it.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import requests

from lake_assets import formats

try:  # ISA-L inflates several times faster than zlib; same stream format, same errors.
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal is a declared dependency
    import zlib as _zlib

CHUNK_SIZE = 1 << 20
# The key of open_source's headers that names where the bytes came from after redirects.
FETCHED_FROM = "X-Lake-Assets-Fetched-From"
# The overall deadline of a download whose size is known: the per-read timeout plus the time the
# file takes at this rate. A server slower than this is treated as stuck, not as slow.
MIN_BYTES_PER_SECOND = 256 * 1024
# ... and of one whose size the server does not say.
UNKNOWN_SIZE_DEADLINE = 3600.0


class SourceError(Exception):
    """The source could not deliver the file."""


class SourceNotFound(SourceError):
    """The file is not published at that address (HTTP 404/410, missing file)."""


class TransientSourceError(SourceError):
    """A failure worth retrying: 5xx, 429, timeouts, dropped connections."""


class CorruptDownload(SourceError):
    """The bytes arrived but are not a complete file (a cut gzip stream, a short body)."""


class DeadlineExceeded(TransientSourceError):
    """The download did not finish within its overall deadline (a hung or trickling server)."""


def deadline_for(size: int | None, timeout: float) -> float:
    """Seconds a download of size bytes may take in all."""
    if size is None:
        return UNKNOWN_SIZE_DEADLINE
    return timeout + size / MIN_BYTES_PER_SECOND


class ReadTimedOut(TransientSourceError):
    """The server sent nothing for the per-read timeout (a dead or hung host)."""


@dataclass(frozen=True)
class FetchResult:
    url: str
    bytes: int
    sha256: str
    gzip: bool
    etag: str | None = None
    last_modified: str | None = None
    # The server answered 304 to a conditional request: nothing was written.
    not_modified: bool = False
    # What the bytes are, as the lake names it: .csv.gz, .csv or .parquet ("" when not_modified).
    suffix: str = ""
    # Where the bytes came from: url, or where its redirects led.
    fetched_from: str = ""


@dataclass(frozen=True)
class Probe:
    """What a HEAD request tells about a published file."""

    url: str
    size: int | None
    etag: str | None
    last_modified: str | None

    @property
    def version(self) -> str:
        """A token that changes when the published file does."""
        return self.etag or self.last_modified or f"size={self.size}"


def unchanged_since(probe: Probe, landed: dict, size_alone: bool = True) -> bool:
    """Whether the published file is the one landed (landed: its recorded etag, last_modified
    and bytes), by what the server tells: its ETag, else its Last-Modified and size, else (with
    size_alone: good enough to decide whether to ask for a run) its size alone."""
    if not landed:
        return False
    if probe.etag:
        return probe.etag == landed.get("etag")
    same_size = probe.size is None or probe.size == landed.get("bytes")
    if probe.last_modified:
        return probe.last_modified == landed.get("last_modified") and same_size
    return size_alone and probe.size is not None and same_size


class GzipVerifier:
    """Inflates a gzip stream as it passes, without keeping it, to prove it ends cleanly.

    Handles multi-member files (concatenated gzip), which are valid gzip.
    """

    def __init__(self) -> None:
        self._d = _zlib.decompressobj(31)

    def feed(self, data: bytes) -> None:
        while data:
            if self._d.eof:
                # A new member starts after the previous one ended.
                self._d = _zlib.decompressobj(31)
            # The inflated bytes are dropped at once: only the stream's integrity matters here.
            self._d.decompress(data)
            data = self._d.unused_data if self._d.eof else b""

    def finish(self, name: str) -> None:
        if not self._d.eof:
            raise CorruptDownload(f"{name}: gzip stream is truncated (it ends before its trailer)")


def _check_status(url: str, resp: requests.Response) -> None:
    if resp.status_code in (404, 410):
        resp.close()
        raise SourceNotFound(f"{url}: HTTP {resp.status_code} (not published there)")
    if resp.status_code == 429 or resp.status_code >= 500:
        resp.close()
        raise TransientSourceError(f"{url}: HTTP {resp.status_code} {resp.reason}")
    if resp.status_code not in (200, 304):
        resp.close()
        raise SourceError(f"{url}: HTTP {resp.status_code} {resp.reason}")


MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
# Where instance credentials are served on every cloud: never a redirect's target.
_METADATA_ADDRESSES = {"169.254.169.254", "fd00:ec2::254", "100.100.100.200"}


def resolve(host: str) -> set[str]:
    """The addresses host resolves to (tests inject their own resolver here)."""
    import socket

    try:
        return {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return set()


def _internal(address: str) -> str | None:
    """What kind of non-public address this is, or None for a public one."""
    import ipaddress

    ip = ipaddress.ip_address(address.split("%")[0])
    if address in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    for kind in ("loopback", "link_local", "private", "reserved", "multicast", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    return None


def _check_redirect(origin: str, target: str) -> None:
    """Refuses a redirect to anything but http(s), and from a public host to an internal one
    (a source must not be able to point the worker at its own network or metadata service)."""
    scheme = urllib.parse.urlsplit(target).scheme
    if scheme not in ("http", "https"):
        raise SourceError(f"{origin}: refused a redirect to a {scheme or 'relative'} URL")
    origin_addresses = resolve(urllib.parse.urlsplit(origin).hostname or "")
    if not origin_addresses or any(_internal(a) for a in origin_addresses):
        return  # an internal source (a mirror on the LAN, a test server) may redirect inside
    host = urllib.parse.urlsplit(target).hostname or ""
    for address in sorted(resolve(host)):
        kind = _internal(address)
        if kind:
            raise SourceError(
                f"{origin}: refused a redirect from a public address to {host} ({address}, {kind})"
            )


def _request(method: str, url: str, timeout: float, headers: dict) -> requests.Response:
    """The response at url after its redirects (each one checked), not read yet."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            resp = requests.request(
                method,
                current,
                stream=True,
                timeout=timeout,
                headers=headers,
                allow_redirects=False,
            )
        except (requests.ConnectionError, requests.Timeout) as e:
            raise TransientSourceError(f"{current}: {type(e).__name__}: {e}") from e
        location = resp.headers.get("Location")
        if resp.status_code not in _REDIRECTS or not location:
            return resp
        resp.close()
        target = urllib.parse.urljoin(current, location)
        _check_redirect(url, target)
        current = target
    raise SourceError(f"{url}: more than {MAX_REDIRECTS} redirects")


def _socket(resp: requests.Response):
    """The response's socket, to bound each read by what is left of the deadline; None where
    the HTTP stack hides it (reads are then bounded by the per-read timeout only)."""
    try:
        return resp.raw._fp.fp.raw._sock
    except AttributeError:
        return None


def _lost(
    url: str, e: Exception, got: int, expected: str | None, waited: float, timeout: float
) -> str:
    """Why a body stopped: cut short of its Content-Length, silent too long, or dropped."""
    text = str(e)
    if "IncompleteRead" in text and expected:
        return (
            f"{url}: body ended after {got} of {expected} bytes (Content-Length), {waited:.1f} s in"
        )
    if "timed out" in text.lower():
        return (
            f"{url}: the server sent nothing for {timeout:.0f} s after {got} bytes; gave up "
            f"after {waited:.1f} s"
        )
    return f"{url}: connection lost after {got} bytes and {waited:.1f} s: {e}"


def _iter_http(
    url: str, timeout: float, conditions: dict, deadline: float | None
) -> tuple[Iterator[bytes] | None, dict[str, str]]:
    started = time.monotonic()
    # Until the headers say the size, the wait is bounded by the deadline given, if any.
    first_wait = min(timeout, deadline) if deadline else timeout
    resp = _request("GET", url, first_wait, conditions)
    _check_status(url, resp)
    fetched = {FETCHED_FROM: resp.url} if resp.url and resp.url != url else {}
    if resp.status_code == 304:
        resp.close()
        return None, {**resp.headers, **fetched}
    if resp.headers.get("Content-Type", "").lower().startswith("text/html"):
        resp.close()
        raise CorruptDownload(
            f"{url}: the server answered {resp.status_code} with an HTML page "
            "(Content-Type text/html), not the file; check the URL template"
        )
    # Keep the bytes exactly as published: no transparent Content-Encoding decoding.
    resp.raw.decode_content = False
    expected = resp.headers.get("Content-Length")
    size = int(expected) if expected and expected.isdigit() else None
    allowed = deadline or deadline_for(size, timeout)
    sock = _socket(resp)

    def gave_up(got: int) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"{url}: gave up after {time.monotonic() - started:.1f} s with {got} of "
            f"{expected or 'an unknown number of'} bytes (deadline {allowed:.0f} s)"
        )

    def chunks() -> Iterator[bytes]:
        got = 0
        try:
            while True:
                left = allowed - (time.monotonic() - started)
                if left <= 0:
                    raise gave_up(got)
                if sock is not None:
                    try:
                        sock.settimeout(min(timeout, max(left, 0.05)))
                    except OSError:
                        pass  # the whole body is buffered and the socket already closed
                try:
                    # read1: whatever has arrived, so a trickle cannot hold one read forever.
                    block = resp.raw.read1(CHUNK_SIZE)
                except Exception as e:  # urllib3 ProtocolError/ReadTimeoutError, OSError
                    waited = time.monotonic() - started
                    if waited >= allowed:
                        raise gave_up(got) from e
                    message = _lost(url, e, got, expected, waited, timeout)
                    timed_out = "timed out" in str(e).lower()
                    raise (ReadTimedOut if timed_out else TransientSourceError)(message) from e
                if not block:
                    break
                got += len(block)
                yield block
        finally:
            resp.close()
        if size is not None and resp.headers.get("Content-Encoding") is None:
            if got != size:
                raise TransientSourceError(
                    f"{url}: body ended after {got} of {expected} bytes (Content-Length)"
                )

    return chunks(), {**resp.headers, **fetched}


def _file_path(url: str, root: str | None) -> str:
    path = os.path.realpath(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    if root is not None:
        top = os.path.realpath(urllib.request.url2pathname(urllib.parse.urlparse(root).path))
        if os.path.commonpath([top, path]) != top:
            raise SourceError(
                f"{url}: resolves to {path}, outside the mirror's folder {top}; file:// sources "
                "read only below the folder their URL template names"
            )
    return path


def _file_headers(url: str, root: str | None = None) -> tuple[str, dict[str, str]]:
    path = _file_path(url, root)
    if not os.path.isfile(path):
        raise SourceNotFound(f"{url}: no such file")
    stat = os.stat(path)
    return path, {
        "Content-Length": str(stat.st_size),
        "Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True),
    }


def _iter_file(url: str, root: str | None) -> tuple[Iterator[bytes] | None, dict[str, str]]:
    path, headers = _file_headers(url, root)  # no ETag: callers compare time and size

    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as f:
            while block := f.read(CHUNK_SIZE):
                yield block

    return chunks(), headers


def _scheme(url: str) -> str:
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise SourceError(
            f"{url}: unsupported scheme {scheme!r} (use http://, https:// or file://)"
        )
    return scheme


def open_source(
    url: str,
    timeout: float = 60.0,
    etag: str | None = None,
    deadline: float | None = None,
    file_root: str | None = None,
) -> tuple[Iterator[bytes] | None, dict[str, str]]:
    """Chunks of the file at url and the response headers (FETCHED_FROM: where the bytes come
    from after redirects); None for chunks when a conditional request (the ETag of the copy we
    have) says the file has not changed.

    deadline: seconds the whole download may take (None: from the size, deadline_for).
    file_root: a file:// URL's path must lie below this folder."""
    # Only the ETag makes a request conditional: a Last-Modified alone cannot tell a file
    # replaced with its time kept (cp -p, rsync -a); callers compare it with the size instead.
    conditions = {"If-None-Match": etag} if etag else {}
    if _scheme(url) == "file":
        return _iter_file(url, file_root)
    return _iter_http(url, timeout, conditions, deadline)


def probe(url: str, timeout: float = 30.0, file_root: str | None = None) -> Probe | None:
    """HEAD the url: a Probe when it is published, None for 404/410 (not published yet)."""
    if _scheme(url) == "file":
        try:
            _, headers = _file_headers(url, file_root)
        except SourceNotFound:
            return None
    else:
        resp = _request("HEAD", url, timeout, {})
        try:
            _check_status(url, resp)
        except SourceNotFound:
            return None
        resp.close()
        headers = resp.headers
    size = headers.get("Content-Length")
    return Probe(
        url=url,
        size=int(size) if size and size.isdigit() else None,
        etag=headers.get("ETag"),
        last_modified=headers.get("Last-Modified"),
    )


def download(
    url: str,
    out: BinaryIO,
    timeout: float = 60.0,
    etag: str | None = None,
    deadline: float | None = None,
    file_root: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> FetchResult:
    """Copy url into out chunk by chunk; hash it; verify gzip integrity when it is gzip.
    progress(bytes so far, total or None) is called after every chunk.

    With the etag of the copy already landed, the request is conditional: a 304
    returns a FetchResult with not_modified=True and writes nothing. Raises before returning if
    anything is wrong, so the caller can discard what was written.
    """
    chunks, headers = open_source(url, timeout, etag, deadline, file_root)
    fetched_from = headers.get(FETCHED_FROM, url)
    if chunks is None:
        return FetchResult(
            url=url,
            bytes=0,
            sha256="",
            gzip=False,
            etag=headers.get("ETag") or etag,
            last_modified=headers.get("Last-Modified"),
            not_modified=True,
            fetched_from=fetched_from,
        )
    sha = hashlib.sha256()
    size = 0
    length = headers.get("Content-Length", "")
    total = int(length) if length.isdigit() else None
    verifier: GzipVerifier | None = None
    first = True
    head = tail = b""
    name = urllib.parse.urlparse(url).path.rsplit("/", 1)[-1] or url
    for block in chunks:
        if first:
            first = False
            head = block[:4]
            if formats.sniff(block) == formats.GZIP_CSV:
                verifier = GzipVerifier()
            elif block.lstrip()[:1] == b"<":
                # No CSV or Parquet file starts with "<": an error or login page served as 200.
                raise CorruptDownload(f"{url}: the server sent an HTML/XML page, not the file")
            elif name.endswith(".gz"):
                raise CorruptDownload(
                    f"{url}: expected a gzip file, got {_looks_like(block)} (no gzip header)"
                )
        tail = (tail + block)[-4:]
        if verifier is not None:
            try:
                verifier.feed(block)
            except _zlib.error as e:
                raise CorruptDownload(f"{url}: corrupt gzip data after {size} bytes: {e}") from e
        sha.update(block)
        out.write(block)
        size += len(block)
        if progress is not None:
            progress(size, total)
    if verifier is not None:
        verifier.finish(url)
    elif size == 0:
        raise CorruptDownload(f"{url}: the file is empty")
    elif name.endswith(".parquet") or head == formats.PARQUET_MAGIC:
        # A Parquet file starts and ends with PAR1; a cut one has no footer.
        if head != formats.PARQUET_MAGIC or tail != formats.PARQUET_MAGIC:
            raise CorruptDownload(
                f"{url}: not a complete Parquet file (it must start and end with PAR1; "
                f"{size} bytes arrived)"
            )
    return FetchResult(
        url=url,
        bytes=size,
        sha256=sha.hexdigest(),
        gzip=verifier is not None,
        etag=headers.get("ETag"),
        last_modified=headers.get("Last-Modified"),
        fetched_from=fetched_from,
        suffix=formats.suffix(formats.GZIP_CSV if verifier is not None else formats.sniff(head)),
    )


def _looks_like(block: bytes) -> str:
    """What bytes look like, named without quoting them (they are the server's, not ours)."""
    kind = formats.sniff(block)
    if kind == formats.PARQUET:
        return "a Parquet file"
    head = block[:512]
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "plain text"
    return "binary data"


def file_sha256(path: str | os.PathLike) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK_SIZE):
            sha.update(block)
    return sha.hexdigest()
