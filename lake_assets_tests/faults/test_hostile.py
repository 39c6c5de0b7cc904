"""Hostile or broken sources through the real CLI: a decompression bomb (its peak memory
measured over the run's whole process tree), credentials in the source URL (searched for in the
instance's storage and compute logs), a 304 to a request without validators, and a file
replaced with its modification time kept. A redirect into a private address needs an injected
resolver, so it is proved in-process (assets/test_raw.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import pytest
from isal import igzip

from lake_assets_tests.helpers import trip_selection

pytestmark = pytest.mark.faults

YELLOW = trip_selection("yellow", layers=("raw", "lake"))
MONTH = "2021-05"


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _peak_memory(popen, stop: threading.Event, peak: list[int]) -> None:
    root = psutil.Process(popen.pid)
    while not stop.is_set() and popen.poll() is None:
        try:
            peak[0] = max(peak[0], _tree_rss(root))
        except psutil.Error:
            pass
        time.sleep(0.05)


def _bomb(path: Path, gigabytes: int = 2) -> Path:
    """gigabytes of zeros, gzipped: about 2 MB a GB, one 'line' without a newline."""
    block = b"0" * (1 << 24)
    with igzip.open(path, "wb", compresslevel=3) as f:
        for _ in range(gigabytes * 64):
            f.write(block)
    return path


def test_a_gzip_bomb_fails_naming_the_limit_within_bounded_memory(stack, tmp_path):
    bomb = _bomb(tmp_path / "bomb.csv.gz")
    stack.publish("yellow", MONTH, 0, bomb)
    proc = stack.start(YELLOW, MONTH, "bomb.log")
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_peak_memory, args=(proc, stop, peak))
    sampler.start()
    code = proc.wait(timeout=300)
    stop.set()
    sampler.join()
    out = stack.log("bomb.log")
    assert code != 0
    raw = (stack.lake / "raw/yellow_tripdata").resolve().as_uri()
    assert (
        f"{raw}/candidate/yellow_tripdata_{MONTH}.csv.gz: line 1 is longer than 1,048,576 "
        "bytes (the limit for one record): not a trip file, or a field with an unclosed quote."
    ) in out
    print(f"gzip bomb ({bomb.stat().st_size:,} bytes for 2 GiB): peak {peak[0] / 2**20:.0f} MiB")
    # Before the bounds the lake step alone peaked at 4.4 GB; the whole tree now stays within
    # what a run costs anyway (Python, Dagster, DuckDB and the forkserver's children).
    assert peak[0] < 1.5 * 2**30
    assert stack.lake_rows("yellow", MONTH) is None  # nothing was published


def test_credentials_in_the_source_url_reach_no_storage_or_log(stack):
    secret_user, secret_sig = "reader:Pa55-w0rd", "S1gnatur3-s3cr3t"
    url = stack.env()["TLC_SOURCE_URL"].replace("http://", f"http://{secret_user}@")
    stack.extra_env["TLC_SOURCE_URL"] = f"{url}?sv=2022&sig={secret_sig}"
    stack.publish("green", MONTH, 50)
    code, out = stack.run(trip_selection("green"), MONTH)
    assert code == 0, out[-3000:]
    code, failed = stack.run(trip_selection("green"), "2019-01")  # a 404, with its error text
    assert code != 0 and "HTTP 404" in failed
    leaks = [
        str(path)
        for path in stack.home.rglob("*")
        if path.is_file()
        and any(s.encode() in path.read_bytes() for s in ("Pa55-w0rd", secret_sig))
    ]
    assert leaks == []
    for text in (out, failed):
        assert "Pa55-w0rd" not in text and secret_sig not in text
    assert "http://<redacted>@127.0.0.1" in out


def test_a_304_to_an_unconditional_request_fails_at_once(stack):
    stack.publish("green", MONTH, 30)
    path = f"/green/green_tripdata_{MONTH}.csv.gz"
    stack.server.behaviour.status[path] = [304, 304, 304, 304]
    code, out = stack.run(trip_selection("green"), MONTH)
    assert code != 0
    assert "answered 304 Not Modified to a request without validators" in out
    assert stack.server.behaviour.hits[path] == 1  # not retried


def test_a_file_replaced_with_its_time_kept_is_loaded(stack):
    import os

    src = stack.publish("fhv", MONTH, 300)
    code, out = stack.run(trip_selection("fhv"), MONTH)
    assert code == 0, out[-3000:]
    kept = src.stat()
    stack.server.publish("fhv", MONTH, 340)
    os.utime(src, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    code, out = stack.run(trip_selection("fhv"), MONTH)
    assert code == 0, out[-3000:]
    assert stack.warehouse_rows("fhv_tripdata", MONTH) == 340
