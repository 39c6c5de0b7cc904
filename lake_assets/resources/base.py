"""The roles a backend plays. Assets type-hint these bases; definitions picks implementations."""

from __future__ import annotations

import abc
import io
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO

import dagster as dg

from lake_assets import scratch
from lake_assets.fetch import FetchResult, Probe
from lake_assets.schemas import TableContract


@dataclass(frozen=True)
class ParquetFooter:
    rows: int
    metadata: dict[str, str]

    @classmethod
    def of(cls, parquet_file) -> ParquetFooter:
        """From a pyarrow.parquet.ParquetFile."""
        meta = parquet_file.metadata
        kv = {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
        return cls(rows=meta.num_rows, metadata=kv)


# Parquet ends with the footer's length (4 bytes, little-endian) and the magic PAR1.
_PARQUET_TAIL = 8
# One ranged read usually holds the whole footer; a wider one follows only when it does not.
_FOOTER_GUESS = 64 * 1024


def footer_from_tail(size: int, read_tail: Callable[[int], bytes], name: str) -> ParquetFooter:
    """A Parquet footer from the object's last bytes (read_tail(n): its last n bytes), for object
    stores that serve ranges: a row count never downloads the data."""
    import pyarrow.parquet as pq

    if size < len(b"PAR1") + _PARQUET_TAIL:  # the leading magic, then the tail
        raise ValueError(f"{name} has {size} bytes: too short to be a Parquet file")
    tail = read_tail(min(size, _FOOTER_GUESS))
    if tail[-4:] != b"PAR1":
        raise ValueError(f"{name} does not end with Parquet's magic bytes: not a Parquet file")
    need = int.from_bytes(tail[-_PARQUET_TAIL:-4], "little") + _PARQUET_TAIL
    if need > len(tail):
        tail = read_tail(min(size, need))
    # The footer alone, behind the leading magic: pyarrow reads only the file's end.
    return ParquetFooter.of(pq.ParquetFile(io.BytesIO(b"PAR1" + tail[-need:])))


def content_type(key: str) -> str:
    if key.endswith(".parquet"):
        return "application/vnd.apache.parquet"
    if key.endswith(".gz"):
        return "application/gzip"
    if key.endswith(".csv"):
        return "text/csv"
    return "application/octet-stream"


class LakeConflict(RuntimeError):
    """Another run replaced a file since this one looked: nothing of this run was published."""


class Unlooked:
    """put_file's seen when the caller did not look first."""


UNLOOKED = Unlooked()


class LakeStorage(dg.ConfigurableResource, abc.ABC):
    """Files by path relative to the lake root. Every write is all-or-nothing."""

    @abc.abstractmethod
    def uri(self, path: str) -> str:
        """Where path lives, as a URI a user or an engine can read (file://, gs://, s3://,
        https://<account>.blob.core.windows.net/)."""

    @abc.abstractmethod
    @contextmanager
    def open_write(self, path: str) -> Iterator[BinaryIO]:
        """A binary file that becomes path only if the block exits cleanly."""

    @abc.abstractmethod
    def put_file(self, local_file: Path, path: str, seen: str | None | Unlooked = UNLOOKED) -> None:
        """Publish a finished local file at path atomically (the local file may be moved).

        seen: what version(path) said when the run first looked (None: no file). The write
        then happens only if path is still that; otherwise it raises the conflict error and
        publishes nothing, so a run that finishes later never overwrites a concurrent run's
        file. Without seen, the condition is taken when the write starts."""

    def conflict(self, path: str) -> LakeConflict:
        """A conditional write refused: another run replaced the object since this one looked."""
        return LakeConflict(
            f"{self.uri(path)} changed while this run was replacing it (another run wrote it); "
            "nothing of this run was published, retry the partition"
        )

    @abc.abstractmethod
    def version(self, path: str) -> str | None:
        """A token of path as it is now (None: no such file), for put_file's seen."""

    @abc.abstractmethod
    @contextmanager
    def local_copy(self, path: str) -> Iterator[Path]:
        """A local file with path's bytes, for engines that read local files."""

    @abc.abstractmethod
    @contextmanager
    def staging_dir(self) -> Iterator[Path]:
        """A scratch folder whose files put_file can publish cheaply; removed afterwards."""

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Remove path if present."""

    @abc.abstractmethod
    def move(self, src: str, dst: str) -> None:
        """Put src's bytes at dst atomically (dst appears whole or keeps its old bytes), then
        remove src."""

    @abc.abstractmethod
    def parquet_footer(self, path: str) -> ParquetFooter:
        """Row count and key-value metadata of a Parquet file, from its footer only."""

    def parquet_row_count(self, path: str) -> int:
        """Rows of a Parquet file, from its footer (without reading the data)."""
        return self.parquet_footer(path).rows

    @abc.abstractmethod
    def list_files(self) -> list[tuple[str, int]]:
        """Every file of the lake as (relative path, bytes), sorted by path."""


class ObjectStoreLake(LakeStorage):
    """A lake in a bucket or container (GCS, S3, Azure Blob): the lake's paths under prefix,
    scratch space on the worker's disk. Writes are staged there, then uploaded whole."""

    prefix: str = ""
    # Local scratch space for downloads and staged files (None: the system temp folder).
    scratch_dir: str | None = None

    def key(self, path: str) -> str:
        """The object name of a lake path; refuses paths that try to leave the lake."""
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise ValueError(f"lake path {path!r} is not a file path inside the lake")
        return self.listing_prefix + "/".join(parts)

    @property
    def listing_prefix(self) -> str:
        """What every object name of the lake starts with ("" without a prefix)."""
        prefix = self.prefix.strip("/")
        return f"{prefix}/" if prefix else ""

    def relative(self, name: str) -> str:
        return name[len(self.listing_prefix) :]

    @contextmanager
    def open_write(self, path: str) -> Iterator[BinaryIO]:
        with self.staging_dir() as d:
            local = d / "upload"
            with open(local, "wb") as f:
                yield f
            self.put_file(local, path)

    @contextmanager
    def staging_dir(self) -> Iterator[Path]:
        root = Path(self.scratch_dir or tempfile.gettempdir()) / "lake_assets-scratch"
        with scratch.scratch_dir(root) as d:
            yield d

    def expected(self, path: str, seen: str | None | Unlooked) -> str | None:
        """The version a write of path must find: what the run saw, else what is there now."""
        return self.version(path) if isinstance(seen, Unlooked) else seen

    def missing(self, path: str) -> FileNotFoundError:
        return FileNotFoundError(f"{self.uri(path)} is not in the lake; materialize it first")


@dataclass(frozen=True)
class LoadResult:
    table: str
    rows_loaded: int
    table_rows: int
    # Rows of the replaced month after the load, counted inside the same transaction.
    slice_rows: int | None = None


class SliceMismatch(RuntimeError):
    """The month's new slice would not have the lake file's rows; nothing was replaced."""

    def __init__(self, table: str, month: date, slice_rows: int, expected_rows: int) -> None:
        super().__init__(
            f"{table}: the {month:%Y-%m} slice would have {slice_rows} rows but the lake file has "
            f"{expected_rows}; the table keeps the month it had"
        )
        self.slice_rows = slice_rows
        self.expected_rows = expected_rows


@dataclass(frozen=True)
class SliceCheck:
    """A check of a month's new slice before it replaces the old one: sql (reading {slice}, the
    new rows, and $month) is run where the new rows are (inside the transaction, or in staging),
    and judge(rows) raises to refuse them; the table then keeps the month it had."""

    sql: str
    judge: Callable[[list[tuple]], None]


class Warehouse(dg.ConfigurableResource, abc.ABC):
    """Tables loaded from lake files; a month is replaced as one transaction."""

    @abc.abstractmethod
    def reads_uri(self, uri: str) -> bool:
        """Whether loads read this lake URI in place; otherwise the caller hands them a local
        copy (a DuckDB warehouse over an S3 or Azure lake)."""

    @abc.abstractmethod
    def table_name(self, contract: TableContract) -> str:
        """Fully qualified name users query, e.g. nyc_taxi.yellow_tripdata."""

    @abc.abstractmethod
    def replace_month(
        self,
        contract: TableContract,
        month: date,
        parquet_uri: str,
        expected_rows: int | None = None,
    ) -> LoadResult:
        """Make the table's source_month slice exactly the rows of the Parquet file.

        With expected_rows, a slice of any other size raises SliceMismatch and the table keeps
        the month it had: the check runs before the replacement is committed."""

    @abc.abstractmethod
    def replace_month_from_query(
        self,
        contract: TableContract,
        month: date,
        select_sql: str,
        verify: SliceCheck | None = None,
    ) -> LoadResult:
        """Make the month's slice exactly the rows of select_sql (which reads $month), if
        verify (when given) accepts them before they are committed."""

    @abc.abstractmethod
    def ensure_table(self, contract: TableContract) -> str:
        """Create the table empty if it does not exist yet; its qualified name."""

    @abc.abstractmethod
    def replace_table(self, contract: TableContract, parquet_uri: str) -> LoadResult:
        """Make the whole table exactly the rows of the Parquet file."""

    @abc.abstractmethod
    def query(self, sql: str, params: list | dict | None = None) -> list[tuple]:
        """Run a read-only query; rows as tuples. Table names are qualified by schema_name."""

    @property
    @abc.abstractmethod
    def dataset(self) -> str:
        """The schema (DuckDB) or dataset (BigQuery) holding the tables."""


class TripSource(dg.ConfigurableResource, abc.ABC):
    """Where monthly trip files and the zone lookup are published."""

    @abc.abstractmethod
    def trip_url(self, service: str, month: date) -> str: ...

    @abc.abstractmethod
    def zones_url(self) -> str: ...

    @abc.abstractmethod
    def download(
        self,
        url: str,
        out: BinaryIO,
        etag: str | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> FetchResult:
        """Stream url into out, conditionally (If-None-Match) when etag is given; progress
        (bytes so far, total or None) after each chunk. Raises lake_assets.fetch.SourceError
        subclasses."""

    @abc.abstractmethod
    def probe(self, url: str) -> Probe | None:
        """Whether url is published (None: not yet), with its size and version headers."""


class IngestPolicy(dg.ConfigurableResource):
    """What the lake step does with rows that do not fit the contract."""

    bad_rows: str = "fail"
    memory_limit: str = "384MB"
