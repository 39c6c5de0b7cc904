"""Faulty servers through the real CLI: a body cut short of its Content-Length, a server that
hangs after its headers or trickles, 503 then 200, an HTML page with 200. Each either converges
with exact counts or fails naming the cause, and the month landed before stays in every layer."""

from __future__ import annotations

import time

import pytest

from lake_assets_tests.helpers import trip_selection

pytestmark = pytest.mark.faults

GREEN = trip_selection("green")
MONTH = "2021-04"
PATH = f"/green/green_tripdata_{MONTH}.csv.gz"


def _good_then_new(stack) -> None:
    stack.publish("green", MONTH, 150)
    code, out = stack.run(GREEN, MONTH)
    assert code == 0, out[-3000:]
    stack.publish("green", MONTH, 400)


def _kept(stack) -> None:
    assert stack.warehouse_rows("green_tripdata", MONTH) == 150
    assert stack.lake_rows("green", MONTH) == 150


@pytest.mark.parametrize(
    "fault, says, attempts",
    [
        ("cut", "body ended after", 4),
        (
            "hang",
            "sent nothing for 2 s after 0 bytes; gave up after 2.0 s (TLC_HTTP_TIMEOUT sets",
            4,
        ),
        ("trickle", "(TLC_DOWNLOAD_DEADLINE sets the deadline)", 4),
        ("html", "with an HTML page (Content-Type text/html)", 1),
    ],
)
def test_a_faulty_server_fails_naming_it_and_keeps_the_month(stack, fault, says, attempts):
    # A dead host: 2 s per read and a 3 s deadline per download, so the figures stay small.
    stack.extra_env.update(TLC_HTTP_TIMEOUT="2", TLC_DOWNLOAD_DEADLINE="3")
    _good_then_new(stack)
    stack.server.behaviour.faults[PATH] = fault
    stack.server.behaviour.fault_seconds = 30
    before = len(stack.server.behaviour.requests)
    started = time.monotonic()
    code, out = stack.run(GREEN, MONTH)
    seconds = time.monotonic() - started
    assert code != 0
    assert says in out
    if fault == "hang":
        assert "(TLC_HTTP_TIMEOUT sets how long one read may wait)" in out
    # One GET an attempt (each also asks HEAD first: the month landed before has no ETag).
    asked = stack.server.behaviour.requests[before:]
    assert [m for m, p, _ in asked if p == PATH and m == "GET"] == ["GET"] * attempts
    print(f"{fault}: failed after {attempts} attempt(s) in {seconds:.1f} s")
    _kept(stack)
    # The server recovers: the same command converges.
    del stack.server.behaviour.faults[PATH]
    code, out = stack.run(GREEN, MONTH)
    assert code == 0, out[-3000:]
    assert stack.warehouse_rows("green_tripdata", MONTH) == 400
    assert stack.lake_rows("green", MONTH) == 400


def test_503_then_200_converges(stack):
    _good_then_new(stack)
    stack.server.behaviour.status[PATH] = [503, 503]
    code, out = stack.run(GREEN, MONTH)
    assert code == 0, out[-3000:]
    assert "HTTP 503" in out
    assert stack.warehouse_rows("green_tripdata", MONTH) == 400
