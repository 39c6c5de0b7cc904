"""lake/*: typed Parquet, one fixed schema per service, derived from the raw file."""

import time

import dagster as dg

from lake_assets import convert, fetch, layout
from lake_assets.partitions import monthly_partitions, partition_month
from lake_assets.resources import IngestPolicy, LakeStorage, TripSource
from lake_assets.schemas import SERVICES, TAXI_ZONES, TableContract, contract_for


def table_schema(contract: TableContract) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.type,
                description=c.description,
                constraints=dg.TableColumnConstraints(nullable=c.nullable),
            )
            for c in contract.columns
        ]
    )


def _convert(
    context: dg.AssetExecutionContext,
    lake: LakeStorage,
    policy: IngestPolicy,
    contract: TableContract,
    raw_path: str,
    out_path: str,
    rejects_path: str | None,
    month=None,
) -> dg.MaterializeResult:
    started = time.monotonic()
    name = lake.uri(raw_path)
    bad_rows = policy.bad_rows if rejects_path else "fail"
    with lake.local_copy(raw_path) as src, lake.staging_dir() as staging:
        staged = staging / "out.parquet"
        try:
            result = convert.csv_to_parquet(
                src,
                staged,
                contract,
                month,
                name=name,
                bad_rows=bad_rows,
                memory_limit=policy.memory_limit,
            )
        except convert.BadInputError as e:
            raise dg.Failure(
                description=str(e),
                metadata={"file": e.file, "line": e.line, "column": e.column, "value": e.value},
                allow_retries=False,
            ) from e
        size = staged.stat().st_size
        checksum = fetch.file_sha256(staged)
        if rejects_path:
            if result.rejects:
                staged_rejects = staging / "rejects.csv"
                convert.write_rejects(result.rejects, staged_rejects)
                lake.put_file(staged_rejects, rejects_path)
            else:
                lake.delete(rejects_path)  # a stale rejects file would describe an older load
        lake.put_file(staged, out_path)
    seconds = time.monotonic() - started
    metadata: dict = {
        "dagster/row_count": result.rows_written,
        "rows_read": result.rows_read,
        "rows_rejected": result.rows_rejected,
        "uri": lake.uri(out_path),
        "bytes": size,
        "sha256": checksum,
        "source_uri": name,
        "source_header": ",".join(result.header),
        "columns_absent_in_source": ", ".join(result.missing_columns) or "none",
        "dagster/column_schema": table_schema(contract),
        "seconds": round(seconds, 3),
        "rows_per_second": round(result.rows_read / seconds) if seconds > 0 else 0,
    }
    if rejects_path and result.rejects:
        metadata["rejects_uri"] = lake.uri(rejects_path)
        context.log.warning(
            f"{result.rows_rejected} row(s) of {name} quarantined in {lake.uri(rejects_path)}"
        )
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(checksum))


def build_lake_trip_asset(service: str) -> dg.AssetsDefinition:
    contract = contract_for(service)

    @dg.asset(
        key=["lake", f"{service}_tripdata"],
        group_name="lake",
        partitions_def=monthly_partitions,
        deps=[dg.AssetKey(["raw", f"{service}_tripdata"])],
        code_version="1",
        kinds={"parquet", "duckdb"},
        metadata={"dagster/column_schema": table_schema(contract)},
        description=(
            f"The month's {service} trips as zstd Parquet with the fixed {contract.name} schema. "
            "Rows that do not fit fail the step, or go to a rejects file with "
            "TLC_BAD_ROWS=quarantine."
        ),
    )
    def lake_trips(
        context: dg.AssetExecutionContext,
        source: TripSource,
        lake: LakeStorage,
        ingest: IngestPolicy,
    ) -> dg.MaterializeResult:
        month = partition_month(context)
        suffix = layout.url_suffix(source.trip_url(service, month))
        return _convert(
            context,
            lake,
            ingest,
            contract,
            layout.raw_trip_path(service, month, suffix),
            layout.lake_trip_path(service, month),
            layout.rejects_path(service, month),
            month,
        )

    return lake_trips


@dg.asset(
    key=["lake", "taxi_zones"],
    group_name="lake",
    deps=[dg.AssetKey(["raw", "taxi_zones"])],
    code_version="1",
    kinds={"parquet", "duckdb"},
    metadata={"dagster/column_schema": table_schema(TAXI_ZONES)},
)
def lake_taxi_zones(
    context: dg.AssetExecutionContext, lake: LakeStorage, ingest: IngestPolicy
) -> dg.MaterializeResult:
    """The zone lookup as Parquet (location_id, borough, zone, service_zone)."""
    return _convert(
        context, lake, ingest, TAXI_ZONES, layout.RAW_ZONES_PATH, layout.LAKE_ZONES_PATH, None
    )


lake_assets: list[dg.AssetsDefinition] = [build_lake_trip_asset(s) for s in SERVICES] + [
    lake_taxi_zones
]
