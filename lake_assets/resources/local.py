"""The laptop backend: a folder for the lake, a DuckDB file for the warehouse."""

from __future__ import annotations

import os
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import BinaryIO

import dagster as dg
import duckdb

from lake_assets import scratch
from lake_assets.resources.base import (
    UNLOOKED,
    LakeStorage,
    LoadResult,
    ParquetFooter,
    SliceCheck,
    SliceMismatch,
    Unlooked,
    Warehouse,
)
from lake_assets.schemas import TableContract, duckdb_ddl

try:
    import fcntl
except ImportError:  # Windows: renames are still atomic, the check and rename are not one
    fcntl = None

STAGING = ".staging"


class LocalLake(LakeStorage):
    """Lake in a local folder (LAKE_DIR). Writes go to a temporary name, then os.replace."""

    base_dir: str = "data/lake"

    @property
    def root(self) -> Path:
        return Path(self.base_dir).resolve()

    def _path(self, path: str) -> Path:
        full = (self.root / path).resolve()
        if self.root not in full.parents:
            raise ValueError(f"lake path {path!r} leaves the lake root {self.root}")
        return full

    def uri(self, path: str) -> str:
        return self._path(path).as_uri()

    @contextmanager
    def open_write(self, path: str) -> Iterator[BinaryIO]:
        final = self._path(path)
        with self.staging_dir() as staging:
            tmp = staging / final.name
            with open(tmp, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            self.put_file(tmp, path)

    def version(self, path: str) -> str | None:
        try:
            st = self._path(path).stat()
        except FileNotFoundError:
            return None
        return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"

    @contextmanager
    def _publish_lock(self, folder: Path) -> Iterator[None]:
        """Held on the target's folder while a write checks the target and renames onto it:
        between processes on this machine the check and its rename happen as one (there is
        no conditional rename); no lock file is left in the lake."""
        if fcntl is None:
            yield
            return
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def put_file(self, local_file: Path, path: str, seen: str | None | Unlooked = UNLOOKED) -> None:
        final = self._path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        with self._publish_lock(final.parent):
            if not isinstance(seen, Unlooked) and self.version(path) != seen:
                raise self.conflict(path)
            self._rename_into(local_file, final)

    def _rename_into(self, local_file: Path, final: Path) -> None:
        try:
            os.replace(local_file, final)
        except OSError:
            # Another filesystem: copy into the lake's own scratch space first (same filesystem
            # as the target), so the rename that publishes it stays atomic.
            with self.staging_dir() as staging:
                tmp = staging / final.name
                with open(local_file, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                    dst.flush()
                    os.fsync(dst.fileno())
                os.replace(tmp, final)

    def move(self, src: str, dst: str) -> None:
        source = self._path(src)
        if not source.is_file():
            raise FileNotFoundError(f"{self.uri(src)} is not in the lake")
        target = self._path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

    @contextmanager
    def local_copy(self, path: str) -> Iterator[Path]:
        full = self._path(path)
        if not full.is_file():
            raise FileNotFoundError(f"{self.uri(path)} is not in the lake; materialize it first")
        yield full

    @contextmanager
    def staging_dir(self) -> Iterator[Path]:
        # Inside the lake root, so publishing a staged file is a rename on one filesystem.
        with scratch.scratch_dir(self.root / STAGING) as d:
            yield d

    def exists(self, path: str) -> bool:
        return self._path(path).is_file()

    def delete(self, path: str) -> None:
        _unlink(self._path(path))

    def parquet_footer(self, path: str) -> ParquetFooter:
        import pyarrow.parquet as pq

        full = self._path(path)
        if not full.is_file():
            raise FileNotFoundError(f"{self.uri(path)} is not in the lake; materialize it first")
        return ParquetFooter.of(pq.ParquetFile(full))

    def list_files(self) -> list[tuple[str, int]]:
        if not self.root.is_dir():
            return []
        return sorted(
            (p.relative_to(self.root).as_posix(), p.stat().st_size)
            for p in self.root.rglob("*")
            if p.is_file() and STAGING not in p.relative_to(self.root).parts
        )


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Commit when the block ends cleanly; otherwise roll back, leaving the table as it was."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _columns(contract: TableContract) -> str:
    return ", ".join(f'"{c}"' for c in contract.column_names)


class WarehouseLocked(RuntimeError):
    """Another process held the DuckDB file's lock past the timeout."""


def _is_lock_error(e: Exception) -> bool:
    text = str(e).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text)


class DuckDBWarehouse(Warehouse):
    """Warehouse in one DuckDB file (DUCKDB_PATH), schema nyc_taxi.

    DuckDB lets one process open a file for writing at a time, and a reader (its CLI, a
    notebook) locks it too. Within a Dagster instance the `warehouse` pool keeps our own writers
    apart; a lock held by any other process is waited for (with backoff, up to
    lock_timeout_seconds, DUCKDB_LOCK_TIMEOUT), then the write fails naming the holder.
    (dagster-duckdb's DuckDBResource retries every IOException, a full disk included, for a
    fixed ~100 s without a word: this wait is for the lock alone, logged and configurable.)
    """

    path: str = "data/warehouse.duckdb"
    schema_name: str = "nyc_taxi"
    lock_timeout_seconds: float = 600.0
    memory_limit: str = "256MB"

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_seconds
        delay, waited = 0.05, False
        log = dg.get_dagster_logger()
        while True:
            try:
                con = duckdb.connect(
                    self.path,
                    config={
                        "memory_limit": self.memory_limit,
                        # Row order inside a table carries no meaning here (the lake keeps file
                        # order); dropping it halves load time and memory.
                        "preserve_insertion_order": False,
                    },
                )
                break
            except duckdb.IOException as e:
                if not _is_lock_error(e):
                    raise
                if time.monotonic() > deadline:
                    raise WarehouseLocked(
                        f"{self.path} stayed locked by another process for "
                        f"{self.lock_timeout_seconds:.0f} s (DUCKDB_LOCK_TIMEOUT): {e}. Close "
                        "that process (a DuckDB shell or notebook holds the lock even to read), "
                        "then run the month again."
                    ) from None
                if not waited:
                    log.info(
                        f"{self.path} is locked by another process (a reader or a writer); "
                        f"waiting up to {self.lock_timeout_seconds:.0f} s (DUCKDB_LOCK_TIMEOUT): "
                        f"{e}"
                    )
                    waited = True
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            con.execute("SET enable_progress_bar = false")
            yield con
        finally:
            con.close()

    @property
    def dataset(self) -> str:
        return self.schema_name

    def reads_uri(self, uri: str) -> bool:
        return urllib.parse.urlparse(uri).scheme in ("file", "")

    def table_name(self, contract: TableContract) -> str:
        return f"{self.schema_name}.{contract.name}"

    def ensure_table(self, contract: TableContract) -> str:
        with self.connect() as con:
            return self._prepare(con, contract)

    def _prepare(self, con: duckdb.DuckDBPyConnection, contract: TableContract) -> str:
        table = self.table_name(contract)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema_name}")
        con.execute(duckdb_ddl(contract, table))
        have = [
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [self.schema_name, contract.name],
            ).fetchall()
        ]
        if have != contract.column_names:
            raise RuntimeError(
                f"{table} has columns {have}, but the {contract.name} contract is "
                f"{contract.column_names}; drop or migrate the table before loading"
            )
        return table

    def replace_month(
        self,
        contract: TableContract,
        month: date,
        parquet_uri: str,
        expected_rows: int | None = None,
    ) -> LoadResult:
        select = f"SELECT {_columns(contract)} FROM read_parquet($src)"
        return self._replace_month(
            contract, month, select, {"src": _local_path(parquet_uri)}, parquet_uri, expected_rows
        )

    def replace_month_from_query(
        self,
        contract: TableContract,
        month: date,
        select_sql: str,
        verify: SliceCheck | None = None,
    ) -> LoadResult:
        return self._replace_month(contract, month, select_sql, {}, "the mart query", verify=verify)

    def _replace_month(
        self,
        contract: TableContract,
        month: date,
        select_sql: str,
        params: dict,
        origin: str,
        expected_rows: int | None = None,
        verify: SliceCheck | None = None,
    ) -> LoadResult:
        with self.connect() as con:
            table = self._prepare(con, contract)
            with _transaction(con):
                con.execute(f"DELETE FROM {table} WHERE source_month = ?", [month])
                (others,) = con.execute(f"SELECT count(*) FROM {table}").fetchone()
                run_params = {**params, "month": month} if "$month" in select_sql else params
                (loaded,) = con.execute(
                    f"INSERT INTO {table} ({_columns(contract)}) {select_sql}", run_params
                ).fetchone()
                total, slice_rows = con.execute(
                    f"SELECT count(*), count(*) FILTER (source_month = ?) FROM {table}", [month]
                ).fetchone()
                if total - others != slice_rows:
                    # The input holds rows of another month: refuse it; the transaction rolls
                    # back and leaves the table as it was.
                    raise ValueError(
                        f"{origin}: {total - others - slice_rows} rows have a source_month "
                        f"other than {month}"
                    )
                if expected_rows is not None and slice_rows != expected_rows:
                    raise SliceMismatch(table, month, int(slice_rows), expected_rows)
                if verify is not None:
                    # Judged before the commit: a refused month rolls back, the old one stays.
                    new_rows = f"(SELECT * FROM {table} WHERE source_month = $month) AS new_slice"
                    sql = verify.sql.format(slice=new_rows)
                    verify.judge(con.execute(sql, {"month": month}).fetchall())
        return LoadResult(
            table=table, rows_loaded=int(loaded), table_rows=int(total), slice_rows=int(slice_rows)
        )

    def replace_table(self, contract: TableContract, parquet_uri: str) -> LoadResult:
        cols = _columns(contract)
        with self.connect() as con:
            table = self._prepare(con, contract)
            with _transaction(con):
                con.execute(f"DELETE FROM {table}")
                (loaded,) = con.execute(
                    f"INSERT INTO {table} ({cols}) SELECT {cols} FROM read_parquet(?)",
                    [_local_path(parquet_uri)],
                ).fetchone()
        return LoadResult(table=table, rows_loaded=int(loaded), table_rows=int(loaded))

    def query(self, sql: str, params: list | dict | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()


def _local_path(uri: str) -> str:
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return urllib.request.url2pathname(parsed.path)
    if parsed.scheme == "":
        return uri
    raise ValueError(f"the DuckDB warehouse reads local lake files, not {uri}")
