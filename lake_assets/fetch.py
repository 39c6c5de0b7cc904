"""Stream a published file from http(s):// or file:// into a writable binary file.

No Dagster import. The caller owns the destination (an atomic lake writer); this module only moves
bytes, hashes them, and proves a gzip stream is complete before the caller commits it.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import requests

try:  # ISA-L inflates several times faster than zlib; same stream format, same errors.
    from isal import isal_zlib as _zlib
except ImportError:  # pragma: no cover - isal is a declared dependency
    import zlib as _zlib

CHUNK_SIZE = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"


class SourceError(Exception):
    """The source could not deliver the file."""


class SourceNotFound(SourceError):
    """The file is not published at that address (HTTP 404/410, missing file)."""


class TransientSourceError(SourceError):
    """A failure worth retrying: 5xx, 429, timeouts, dropped connections."""


class CorruptDownload(SourceError):
    """The bytes arrived but are not a complete file (a cut gzip stream, a short body)."""


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


def _request(method: str, url: str, timeout: float, headers: dict) -> requests.Response:
    try:
        return requests.request(
            method, url, stream=True, timeout=timeout, headers=headers, allow_redirects=True
        )
    except (requests.ConnectionError, requests.Timeout) as e:
        raise TransientSourceError(f"{url}: {type(e).__name__}: {e}") from e


def _iter_http(
    url: str, timeout: float, conditions: dict
) -> tuple[Iterator[bytes] | None, dict[str, str]]:
    resp = _request("GET", url, timeout, conditions)
    _check_status(url, resp)
    if resp.status_code == 304:
        resp.close()
        return None, dict(resp.headers)
    # Keep the bytes exactly as published: no transparent Content-Encoding decoding.
    resp.raw.decode_content = False
    expected = resp.headers.get("Content-Length")

    def chunks() -> Iterator[bytes]:
        got = 0
        try:
            while True:
                try:
                    block = resp.raw.read(CHUNK_SIZE)
                except Exception as e:  # urllib3 ProtocolError/ReadTimeoutError, OSError
                    raise TransientSourceError(
                        f"{url}: connection lost after {got} bytes: {e}"
                    ) from e
                if not block:
                    break
                got += len(block)
                yield block
        finally:
            resp.close()
        if expected is not None and resp.headers.get("Content-Encoding") is None:
            if got != int(expected):
                raise TransientSourceError(
                    f"{url}: body ended after {got} of {expected} bytes (Content-Length)"
                )

    return chunks(), dict(resp.headers)


def _file_headers(url: str) -> tuple[str, dict[str, str]]:
    path = urllib.request.url2pathname(urllib.parse.urlparse(url).path)
    if not os.path.isfile(path):
        raise SourceNotFound(f"{url}: no such file")
    stat = os.stat(path)
    return path, {
        "Content-Length": str(stat.st_size),
        "Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True),
    }


def _iter_file(url: str, conditions: dict) -> tuple[Iterator[bytes] | None, dict[str, str]]:
    path, headers = _file_headers(url)
    if conditions.get("If-Modified-Since") == headers["Last-Modified"]:
        return None, headers

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
    url: str, timeout: float = 60.0, etag: str | None = None, last_modified: str | None = None
) -> tuple[Iterator[bytes] | None, dict[str, str]]:
    """Chunks of the file at url and the response headers; None for chunks when a conditional
    request (etag / last_modified of the copy we have) says the file has not changed."""
    conditions = {}
    if etag:
        conditions["If-None-Match"] = etag
    if last_modified:
        conditions["If-Modified-Since"] = last_modified
    if _scheme(url) == "file":
        return _iter_file(url, conditions)
    return _iter_http(url, timeout, conditions)


def probe(url: str, timeout: float = 30.0) -> Probe | None:
    """HEAD the url: a Probe when it is published, None for 404/410 (not published yet)."""
    if _scheme(url) == "file":
        try:
            _, headers = _file_headers(url)
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
    last_modified: str | None = None,
) -> FetchResult:
    """Copy url into out chunk by chunk; hash it; verify gzip integrity when it is gzip.

    With etag / last_modified of the copy already landed, the request is conditional: a 304
    returns a FetchResult with not_modified=True and writes nothing. Raises before returning if
    anything is wrong, so the caller can discard what was written.
    """
    chunks, headers = open_source(url, timeout, etag, last_modified)
    if chunks is None:
        return FetchResult(
            url=url,
            bytes=0,
            sha256="",
            gzip=False,
            etag=headers.get("ETag") or etag,
            last_modified=headers.get("Last-Modified") or last_modified,
            not_modified=True,
        )
    sha = hashlib.sha256()
    size = 0
    verifier: GzipVerifier | None = None
    first = True
    head = tail = b""
    name = urllib.parse.urlparse(url).path.rsplit("/", 1)[-1] or url
    for block in chunks:
        if first:
            first = False
            head = block[:4]
            if block[:2] == GZIP_MAGIC:
                verifier = GzipVerifier()
            elif name.endswith(".gz"):
                raise CorruptDownload(f"{url}: expected a gzip file, got {block[:40]!r}")
        tail = (tail + block)[-4:]
        if verifier is not None:
            try:
                verifier.feed(block)
            except _zlib.error as e:
                raise CorruptDownload(f"{url}: corrupt gzip data after {size} bytes: {e}") from e
        sha.update(block)
        out.write(block)
        size += len(block)
    if verifier is not None:
        verifier.finish(url)
    elif size == 0:
        raise CorruptDownload(f"{url}: the file is empty")
    elif name.endswith(".parquet") or head == PARQUET_MAGIC:
        # A Parquet file starts and ends with PAR1; a cut one has no footer.
        if head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
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
    )


def file_sha256(path: str | os.PathLike) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK_SIZE):
            sha.update(block)
    return sha.hexdigest()
