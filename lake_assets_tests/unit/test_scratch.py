"""Tier 1: scratch folders a killed process leaves are removed; a live one's never are."""

import os
import subprocess
import sys
import time
import types
from pathlib import Path

from lake_assets import scratch


def _holder(folder: Path) -> subprocess.Popen:
    """Another process that opens a scratch folder under folder and keeps it."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from lake_assets import scratch\n"
        "with scratch.scratch_dir(Path(sys.argv[1])) as d:\n"
        "    print(d, flush=True)\n"
        "    time.sleep(60)\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True
    )


def test_a_sweep_while_the_owner_takes_its_lock_keeps_the_folder(tmp_path, monkeypatch):
    """Another run sweeps at the worst moment: the owner's folder exists, its lock not yet held.

    (A backfill's runs failed on a removed .staging/scratch-* folder this way.)
    """
    real = scratch.fcntl
    swept = []

    def flock(fd: int, op: int) -> None:
        if op == real.LOCK_EX:  # the owner's blocking lock, not a sweep's probe
            swept.extend(scratch.remove_stale(tmp_path))
        real.flock(fd, op)

    monkeypatch.setattr(
        scratch,
        "fcntl",
        types.SimpleNamespace(LOCK_EX=real.LOCK_EX, LOCK_NB=real.LOCK_NB, flock=flock),
    )
    with scratch.scratch_dir(tmp_path) as mine:
        assert swept == []
        (mine / "download").write_bytes(b"x")
        assert sorted(p.name for p in mine.iterdir()) == [scratch.LOCK_NAME, "download"]
        assert scratch.remove_stale(tmp_path) == []
    assert not mine.exists()


def test_a_killed_owners_folder_is_removed_and_a_live_ones_kept(tmp_path):
    live = _holder(tmp_path)
    dead = _holder(tmp_path)
    try:
        live_dir = Path(live.stdout.readline().strip())
        dead_dir = Path(dead.stdout.readline().strip())
        (dead_dir / "download").write_bytes(b"x" * 100)
        (live_dir / "out.parquet.inprogress").write_bytes(b"x")
        dead.kill()  # SIGKILL: no cleanup runs in it
        dead.wait()
        assert dead_dir.is_dir()
        with scratch.scratch_dir(tmp_path) as mine:
            assert mine.is_dir()
            assert not dead_dir.exists()
            assert (live_dir / "out.parquet.inprogress").exists()
        assert not mine.exists()
    finally:
        live.kill()
        live.wait()


def test_an_unlocked_folder_is_kept_while_young(tmp_path):
    young = tmp_path / f"{scratch.PREFIX}young"
    young.mkdir()
    old = tmp_path / f"{scratch.PREFIX}old"
    old.mkdir()
    past = time.time() - scratch.UNLOCKED_GRACE_SECONDS - 5
    os.utime(old, (past, past))
    other = tmp_path / "not-scratch"
    other.mkdir()
    assert scratch.remove_stale(tmp_path) == [old]
    assert young.exists() and other.exists()
