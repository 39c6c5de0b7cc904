"""The cloud backend: the lake in a GCS bucket, the warehouse in a BigQuery dataset.

Credentials come the standard way (application default credentials, GOOGLE_APPLICATION_CREDENTIALS)
through dagster-gcp's GCSResource and BigQueryResource. With an emulator host set, clients talk
to it with anonymous credentials, so nothing looks for credentials or the metadata server.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dagster_gcp import BigQueryResource, GCSResource
from google.api_core import exceptions as gexc
from google.cloud import bigquery, storage
from pydantic import PrivateAttr

from lake_assets import sql_dialect
from lake_assets.resources.base import (
    UNLOOKED,
    LoadResult,
    ObjectStoreLake,
    ParquetFooter,
    SliceCheck,
    SliceMismatch,
    Unlooked,
    Warehouse,
    content_type,
)
from lake_assets.schemas import BIGQUERY_TYPES, TableContract

# Uploads go in resumable chunks of this size: the object appears only when the last chunk is
# committed, so a failed upload leaves the previous object (or none), never part of a file.
UPLOAD_CHUNK = 16 * 1024 * 1024
# A staging table outlives a crashed run by at most this long.
STAGING_TTL = timedelta(days=1)


def _anonymous():
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()


class GCSLake(ObjectStoreLake):
    """Lake in gs://bucket/prefix/, with the same relative paths as the local lake."""

    project: str
    bucket: str
    # STORAGE_EMULATOR_HOST, e.g. http://127.0.0.1:4443: anonymous credentials, no Google.
    emulator_host: str | None = None

    _client: storage.Client | None = PrivateAttr(default=None)

    def client(self) -> storage.Client:
        if self._client is None:
            if self.emulator_host:
                self._client = storage.Client(
                    project=self.project,
                    credentials=_anonymous(),
                    client_options={"api_endpoint": self.emulator_host},
                )
            else:
                self._client = GCSResource(project=self.project).get_client()
        return self._client

    def _bucket(self) -> storage.Bucket:
        return self.client().bucket(self.bucket)

    def uri(self, path: str) -> str:
        return f"gs://{self.bucket}/{self.key(path)}"

    def version(self, path: str) -> str | None:
        current = self._bucket().get_blob(self.key(path))
        return str(current.generation) if current else None

    def put_file(self, local_file: Path, path: str, seen: str | None | Unlooked = UNLOOKED) -> None:
        key = self.key(path)
        expected = self.expected(path, seen)
        blob = self._bucket().blob(key, chunk_size=UPLOAD_CHUNK)
        try:
            # The generation precondition makes the replacement conditional on the object this
            # run saw: a concurrent writer's object is never silently overwritten.
            blob.upload_from_filename(
                str(local_file),
                content_type=content_type(key),
                if_generation_match=int(expected) if expected else 0,
                checksum="crc32c",
            )
        except gexc.PreconditionFailed as e:
            raise self.conflict(path) from e

    @contextmanager
    def local_copy(self, path: str) -> Iterator[Path]:
        blob = self._bucket().blob(self.key(path))
        with self.staging_dir() as d:
            local = d / Path(path).name
            try:
                # Streams to disk in chunks and verifies the object's CRC32C.
                blob.download_to_filename(str(local), checksum="crc32c")
            except gexc.NotFound:
                raise self.missing(path) from None
            yield local

    def move(self, src: str, dst: str) -> None:
        bucket = self._bucket()
        source = bucket.get_blob(self.key(src))
        if source is None:
            raise FileNotFoundError(f"{self.uri(src)} is not in the lake")
        current = bucket.get_blob(self.key(dst))
        try:
            # A server-side copy: the target object appears whole. Conditional on the target
            # this run saw, like put_file.
            bucket.copy_blob(
                source,
                bucket,
                self.key(dst),
                if_generation_match=current.generation if current else 0,
                if_source_generation_match=source.generation,
            )
        except gexc.PreconditionFailed as e:
            raise RuntimeError(
                f"{self.uri(dst)} or {self.uri(src)} changed while this run was promoting it "
                "(another run wrote it); retry the partition"
            ) from e
        self.delete(src)

    def exists(self, path: str) -> bool:
        return self._bucket().blob(self.key(path)).exists()

    def delete(self, path: str) -> None:
        try:
            self._bucket().blob(self.key(path)).delete()
        except gexc.NotFound:
            pass

    def parquet_footer(self, path: str) -> ParquetFooter:
        import pyarrow.parquet as pq

        blob = self._bucket().get_blob(self.key(path))
        if blob is None:
            raise FileNotFoundError(f"{self.uri(path)} is not in the lake")
        # Ranged reads of the footer only, not the whole object.
        with blob.open("rb", chunk_size=256 * 1024) as f:
            return ParquetFooter.of(pq.ParquetFile(f))

    def list_files(self) -> list[tuple[str, int]]:
        start = self.listing_prefix
        return sorted(
            (self.relative(b.name), b.size)
            for b in self.client().list_blobs(self.bucket, prefix=start or None)
        )


def bigquery_schema(contract: TableContract) -> list[bigquery.SchemaField]:
    """The contract as a BigQuery schema: the same column names (never re-cased), types, modes."""
    return [
        bigquery.SchemaField(
            c.name,
            BIGQUERY_TYPES[c.type],
            mode="NULLABLE" if c.nullable else "REQUIRED",
            description=c.description,
        )
        for c in contract.columns
    ]


def table_spec(contract: TableContract, table_id: str) -> bigquery.Table:
    """A month-partitioned, location-clustered table for the contract (monthly tables)."""
    table = bigquery.Table(table_id, schema=bigquery_schema(contract))
    table.description = f"lake_assets {contract.name}"
    names = contract.column_names
    if "source_month" in names:
        table.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.MONTH, field="source_month"
        )
        cluster = [c for c in ("pickup_location_id", "service") if c in names]
        if cluster:
            table.clustering_fields = cluster[:1]
    return table


def parquet_load_config(
    contract: TableContract, into_staging: bool = False
) -> bigquery.LoadJobConfig:
    """How a lake Parquet file becomes a table: a load job, free, with the exact schema. The zone
    lookup's replaces what the table held; a month's appends to its staging table, created empty
    (with its expiry) before the load, so a worker that dies mid-load leaves a table that
    expires."""
    return bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        schema=bigquery_schema(contract),
        write_disposition=(
            bigquery.WriteDisposition.WRITE_APPEND
            if into_staging
            else bigquery.WriteDisposition.WRITE_TRUNCATE
        ),
        create_disposition=(
            bigquery.CreateDisposition.CREATE_NEVER
            if into_staging
            else bigquery.CreateDisposition.CREATE_IF_NEEDED
        ),
    )


def merge_month_sql(contract: TableContract, table: str, staging: str) -> str:
    """One MERGE statement that replaces the month: BigQuery runs a DML statement atomically, so
    the month is either the old rows or the new ones, never empty or doubled. The DELETE half is
    restricted to the month with a constant filter, which prunes the other partitions."""
    cols = ", ".join(contract.column_names)
    values = ", ".join(f"s.{c}" for c in contract.column_names)
    return (
        f"MERGE {table} AS t\n"
        f"USING {staging} AS s\n"
        "ON FALSE\n"
        "WHEN NOT MATCHED BY SOURCE AND t.source_month = @month THEN DELETE\n"
        f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values})"
    )


def staging_check_sql(staging: str) -> str:
    """Rows in the staging table, and those of another month (which refuse the load)."""
    return (
        "SELECT count(*) AS rows_staged, "
        "COUNTIF(source_month IS NULL OR source_month != @month) AS other_months "
        f"FROM {staging}"
    )


def query_parameters(params: dict | list | None) -> list:
    def typed(name: str | None, value: Any):
        if isinstance(value, bool):
            kind = "BOOL"
        elif isinstance(value, int):
            kind = "INT64"
        elif isinstance(value, float):
            kind = "FLOAT64"
        elif isinstance(value, datetime):
            kind = "DATETIME"
        elif isinstance(value, date):
            kind = "DATE"
        else:
            kind = "STRING"
        return bigquery.ScalarQueryParameter(name, kind, value)

    if not params:
        return []
    if isinstance(params, dict):
        return [typed(k, v) for k, v in params.items()]
    return [typed(None, v) for v in params]


class BigQueryWarehouse(Warehouse):
    """Warehouse in one BigQuery dataset (BQ_DATASET). Tables are partitioned by source_month.

    A month loads from the lake's gs:// Parquet with a load job into a staging table (no rows
    pass through this process), is checked there, and replaces the month with one MERGE.
    """

    project: str
    dataset_name: str = "nyc_taxi"
    location: str = "US"
    # BIGQUERY_EMULATOR_HOST, e.g. http://127.0.0.1:9050: anonymous credentials, no Google.
    emulator_host: str | None = None

    _client: bigquery.Client | None = PrivateAttr(default=None)

    @contextmanager
    def client(self) -> Iterator[bigquery.Client]:
        if self.emulator_host:
            if self._client is None:
                from google.api_core.client_options import ClientOptions

                self._client = bigquery.Client(
                    project=self.project,
                    location=self.location,
                    credentials=_anonymous(),
                    client_options=ClientOptions(api_endpoint=self.emulator_host),
                )
            yield self._client
        else:
            with BigQueryResource(project=self.project, location=self.location).get_client() as c:
                yield c

    @property
    def dataset(self) -> str:
        return self.dataset_name

    def reads_uri(self, uri: str) -> bool:
        # Load jobs read the bucket themselves; the worker never downloads the month.
        return uri.startswith("gs://")

    def table_name(self, contract: TableContract) -> str:
        return f"{self.project}.{self.dataset_name}.{contract.name}"

    def _ensure_dataset(self, client: bigquery.Client) -> None:
        ref = bigquery.DatasetReference(self.project, self.dataset_name)
        try:
            client.get_dataset(ref)
        except gexc.NotFound:
            ds = bigquery.Dataset(ref)
            ds.location = self.location
            client.create_dataset(ds, exists_ok=True)

    def _prepare(self, client: bigquery.Client, contract: TableContract) -> str:
        table_id = self.table_name(contract)
        try:
            table = client.get_table(table_id)
        except gexc.NotFound:
            self._ensure_dataset(client)
            table = client.create_table(table_spec(contract, table_id), exists_ok=True)
        have = [f.name for f in table.schema]
        if have != contract.column_names:
            raise RuntimeError(
                f"{table_id} has columns {have}, but the {contract.name} contract is "
                f"{contract.column_names}; drop or migrate the table before loading"
            )
        return table_id

    def ensure_table(self, contract: TableContract) -> str:
        with self.client() as client:
            return self._prepare(client, contract)

    def _query(self, client: bigquery.Client, sql: str, params=None) -> list[tuple]:
        job = client.query(
            sql, job_config=bigquery.QueryJobConfig(query_parameters=query_parameters(params))
        )
        return [tuple(row.values()) for row in job.result()]

    def _staging_id(self, contract: TableContract, month: date) -> str:
        return (
            f"{self.project}.{self.dataset_name}."
            f"_staging_{contract.name}_{month:%Y%m}_{secrets.token_hex(4)}"
        )

    def _replace_month_from_staging(
        self,
        client: bigquery.Client,
        contract: TableContract,
        month: date,
        fill_staging,
        origin: str,
        expected_rows: int | None = None,
        verify: SliceCheck | None = None,
    ) -> LoadResult:
        table_id = self._prepare(client, contract)
        staging_id = self._staging_id(contract, month)
        try:
            # Created with its expiry and the contract's schema before anything fills it.
            client.create_table(
                _expiring(bigquery.Table(staging_id, schema=bigquery_schema(contract)))
            )
            fill_staging(staging_id)
            table, staging = _sql_name(table_id), _sql_name(staging_id)
            [(staged, others)] = self._query(client, staging_check_sql(staging), {"month": month})
            if others:
                raise ValueError(
                    f"{origin}: {others} rows have a source_month other than {month}; "
                    f"{table_id} is unchanged"
                )
            if expected_rows is not None and staged != expected_rows:
                raise SliceMismatch(table_id, month, int(staged), expected_rows)
            if verify is not None:
                # The new slice is judged in staging: a refused month never reaches the table.
                # Transpiled with a plain name first: sqlglot reads DuckDB, not BigQuery's quotes.
                sql = sql_dialect.to_bigquery(verify.sql.format(slice="new_slice"))
                sql = re.sub(r"\bnew_slice\b", staging, sql)
                verify.judge(self._query(client, sql, {"month": month}))
            self._query(client, merge_month_sql(contract, table, staging), {"month": month})
            [(total, slice_rows)] = self._query(
                client,
                f"SELECT count(*), COUNTIF(source_month = @month) FROM {table}",
                {"month": month},
            )
        finally:
            client.delete_table(staging_id, not_found_ok=True)
        return LoadResult(
            table=table_id,
            rows_loaded=int(staged),
            table_rows=int(total),
            slice_rows=int(slice_rows),
        )

    def replace_month(
        self,
        contract: TableContract,
        month: date,
        parquet_uri: str,
        expected_rows: int | None = None,
    ) -> LoadResult:
        _require_gs(parquet_uri)

        with self.client() as client:

            def load(staging_id: str) -> None:
                client.load_table_from_uri(
                    parquet_uri, staging_id, job_config=parquet_load_config(contract, True)
                ).result()

            return self._replace_month_from_staging(
                client, contract, month, load, parquet_uri, expected_rows
            )

    def replace_month_from_query(
        self,
        contract: TableContract,
        month: date,
        select_sql: str,
        verify: SliceCheck | None = None,
    ) -> LoadResult:
        sql = sql_dialect.to_bigquery(select_sql)

        with self.client() as client:

            def run(staging_id: str) -> None:
                # An INSERT into the staging table made with the contract's schema keeps the
                # mart's types exactly (a query's destination table would infer them).
                insert = (
                    f"INSERT INTO {_sql_name(staging_id)} "
                    f"({', '.join(contract.column_names)})\n{sql}"
                )
                self._query(client, insert, {"month": month})

            return self._replace_month_from_staging(
                client, contract, month, run, "the mart query", verify=verify
            )

    def replace_table(self, contract: TableContract, parquet_uri: str) -> LoadResult:
        _require_gs(parquet_uri)
        with self.client() as client:
            table_id = self._prepare(client, contract)
            # A WRITE_TRUNCATE load replaces the table atomically when the job succeeds.
            job = client.load_table_from_uri(
                parquet_uri, table_id, job_config=parquet_load_config(contract)
            )
            job.result()
            loaded = int(job.output_rows or 0)
        return LoadResult(table=table_id, rows_loaded=loaded, table_rows=loaded)

    def query(self, sql: str, params: list | dict | None = None) -> list[tuple]:
        with self.client() as client:
            return self._query(client, sql_dialect.to_bigquery(sql), params)


def _sql_name(table_id: str) -> str:
    """project.dataset.table as a SQL name; backquoted since project ids may hold dashes."""
    return f"`{table_id}`"


def _expiring(table: bigquery.Table) -> bigquery.Table:
    table.expires = datetime.now(timezone.utc) + STAGING_TTL
    return table


def _require_gs(uri: str) -> None:
    if not uri.startswith("gs://"):
        raise ValueError(f"BigQuery loads from the GCS lake (gs://...), not {uri}")
