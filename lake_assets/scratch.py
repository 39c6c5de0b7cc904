"""Scratch folders that a killed run cannot leave behind for good.

No Dagster import. Each folder holds a lock file that its owner keeps locked (flock) while the
folder is in use; the kernel drops the lock when the owner exits, kill -9 included. Whoever opens
a new scratch folder first removes the siblings nobody holds, so stale downloads,
`*.inprogress` Parquet and DuckDB spill files go away on the next step, and a live run's folder
is never touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, stale folders stay until removed
    fcntl = None

LOCK_NAME = ".owner.lock"
PREFIX = "scratch-"
# A folder whose owner has not taken its lock yet (between mkdtemp and flock) is young; one with
# no lock file that is older than this was left by a crash before the lock existed.
UNLOCKED_GRACE_SECONDS = 600


def _held(lock_file: Path) -> bool:
    """Whether a live process holds lock_file (False when it can be taken now)."""
    if fcntl is None:
        return True
    try:
        fd = os.open(lock_file, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock we may just have taken
    return False


def remove_stale(parent: Path) -> list[Path]:
    """Remove the scratch folders under parent that no live process holds; the ones removed."""
    removed = []
    try:
        children = list(parent.iterdir())
    except FileNotFoundError:
        return removed
    for child in children:
        if not child.name.startswith(PREFIX) or not child.is_dir():
            continue
        lock = child / LOCK_NAME
        if lock.exists():
            if _held(lock):
                continue
        elif time.time() - child.stat().st_mtime < UNLOCKED_GRACE_SECONDS:
            continue
        shutil.rmtree(child, ignore_errors=True)
        removed.append(child)
    return removed


@contextmanager
def scratch_dir(parent: Path) -> Iterator[Path]:
    """A new folder under parent, locked while the block runs and removed afterwards.

    Stale folders under parent (their owner died) are removed first.
    """
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale(parent)
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
    fd = _take_lock(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def _take_lock(folder: Path) -> int:
    """Create folder's lock file already locked; its open descriptor.

    The lock is taken under another name and then renamed into place (the rename keeps the
    inode, so the lock with it): a sweep by another process never finds LOCK_NAME unlocked
    while its owner lives. Locking LOCK_NAME after creating it left a window in which a sweep
    took the free lock for a dead owner's and removed a live run's folder.
    """
    pending = folder / f"{LOCK_NAME}.pending"
    fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(pending, folder / LOCK_NAME)
    return fd
