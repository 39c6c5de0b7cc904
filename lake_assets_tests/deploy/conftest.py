"""The deployment stage's stack: six months on the mirror, the schedules ticking every minute."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lake_assets_tests.stack import Stack, running_stack

MONTHS = ["2021-01", "2021-02", "2021-03", "2021-04", "2021-05", "2021-06"]
ROWS = {"yellow": 1500, "green": 400, "fhv": 800}


@pytest.fixture(scope="package")
def stack(tmp_path_factory) -> Iterator[Stack]:
    # Every minute, so that the daemon's schedule tick can be seen in a test.
    yield from running_stack(
        tmp_path_factory.mktemp("deploy"), MONTHS, ROWS, {"TLC_SCHEDULE": "* * * * *"}
    )
