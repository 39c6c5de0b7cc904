"""Six runs started at once on a brand-new instance folder through the make targets: the
instance is created once, under a lock, before any of them runs, so none fails and the folder
stays healthy."""

from __future__ import annotations

import os
import subprocess
from datetime import date

import pytest

from lake_assets import instance
from lake_assets_tests.conftest import REPO
from lake_assets_tests.faults.conftest import Stack
from lake_dev import generator

pytestmark = pytest.mark.faults

MONTHS = ["2021-01", "2021-02", "2021-03", "2021-04", "2021-05", "2021-06"]


def test_six_parallel_make_runs_on_a_fresh_home(tmp_path):
    demo = tmp_path / "demo"
    home = tmp_path / "fresh_home"
    for i, month in enumerate(MONTHS):
        generator.write_month(
            "green",
            date.fromisoformat(f"{month}-01"),
            100 + i,
            demo / "mirror" / "green" / f"green_tripdata_{month}.csv.gz",
        )
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "MAKEFLAGS")}
    procs = [
        subprocess.Popen(
            [
                "make",
                "-s",
                "-C",
                str(REPO),
                "materialize",
                f"INSTANCE={home}",
                f"DEMO_DIR={demo}",
                f"DEMO_MONTHS={' '.join(MONTHS)}",
                "SELECT=raw/green_tripdata,lake/green_tripdata,warehouse/green_tripdata",
                f"PARTITION={month}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for month in MONTHS
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    assert sum(f"instance created in {home}" in out for out in outputs) == 1
    instance.check_not_corrupt(home)
    stack = Stack(tmp_path, None)  # type: ignore[arg-type]
    stack.root = demo
    counts = {m: stack.warehouse_rows("green_tripdata", m) for m in MONTHS}
    assert counts == {m: 100 + i for i, m in enumerate(MONTHS)}
