"""The roles a backend plays. Assets type-hint these bases; definitions picks implementations."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO

import dagster as dg

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


class LakeStorage(dg.ConfigurableResource, abc.ABC):
    """Files by path relative to the lake root. Every write is all-or-nothing."""

    @abc.abstractmethod
    def uri(self, path: str) -> str:
        """Where path lives, as a URI a user or an engine can read (file://, gs://)."""

    @abc.abstractmethod
    @contextmanager
    def open_write(self, path: str) -> Iterator[BinaryIO]:
        """A binary file that becomes path only if the block exits cleanly."""

    @abc.abstractmethod
    def put_file(self, local_file: Path, path: str) -> None:
        """Publish a finished local file at path atomically (the local file may be moved)."""

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


class Warehouse(dg.ConfigurableResource, abc.ABC):
    """Tables loaded from lake files; a month is replaced as one transaction."""

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
        self, contract: TableContract, month: date, select_sql: str
    ) -> LoadResult:
        """Make the month's slice exactly the rows of select_sql (which reads $month)."""

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
        last_modified: str | None = None,
    ) -> FetchResult:
        """Stream url into out, conditionally when etag / last_modified are given.
        Raises lake_assets.fetch.SourceError subclasses."""

    @abc.abstractmethod
    def probe(self, url: str) -> Probe | None:
        """Whether url is published (None: not yet), with its size and version headers."""


class IngestPolicy(dg.ConfigurableResource):
    """What the lake step does with rows that do not fit the contract."""

    bad_rows: str = "fail"
    memory_limit: str = "384MB"
