"""lake/*: typed Parquet, one fixed schema per service, derived from the raw file."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import dagster as dg
import pyarrow.parquet as pq

from lake_assets import convert, fetch, layout, quality
from lake_assets.assets import checks
from lake_assets.automation import FOLLOW_UPSTREAM
from lake_assets.partitions import ONE_MONTH_PER_RUN, monthly_partitions, partition_month
from lake_assets.resources import IngestPolicy, LakeStorage, TripSource
from lake_assets.schemas import SERVICES, TAXI_ZONES, TableContract, contract_for

TRIP_BLOCKING = (quality.SCHEMA_MATCHES_CONTRACT, quality.NOT_EMPTY, quality.ROWS_ACCOUNTED_FOR)
ZONE_BLOCKING = (
    quality.SCHEMA_MATCHES_CONTRACT,
    quality.UNIQUE_LOCATION_IDS,
    quality.BOROUGH_PRESENT,
)


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
    month: date | None,
    service: str | None,
) -> dg.MaterializeResult:
    started = time.monotonic()
    name = lake.uri(raw_path)
    bad_rows = policy.bad_rows if rejects_path else "fail"
    with (
        lake.local_copy(raw_path) as src,
        lake.staging_dir() as staging,
        ThreadPoolExecutor(1) as pool,
    ):
        staged = staging / "out.parquet"
        # The independent count of a trip month's raw rows (for the parity check) runs beside
        # DuckDB's conversion; the zone lookup has no parity check.
        source_rows = pool.submit(quality.count_source_rows, src) if service else None
        try:
            result = convert.to_parquet(
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
        outcomes = [quality.schema_outcome(pq.read_schema(staged), contract)]
        figures: dict = {}
        if service is None:
            outcomes += quality.zone_outcomes(staged)
        else:
            outcomes.append(quality.not_empty_outcome(result.rows_written))
            outcomes.append(
                quality.parity_outcome(
                    source_rows.result(), result.rows_written, result.rows_rejected
                )
            )
            figures = quality.profile_trips(staged, contract, month)
            outcomes += quality.warning_outcomes(service, figures)
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
    # Numeric figures per month, so the UI plots them across partitions.
    for key in (
        "pickups_in_month_share",
        "dropoff_before_pickup_share",
        "pickup_location_null_rate",
        "dropoff_location_null_rate",
        "passenger_count_null_rate",
        "negative_total_share",
    ):
        if key in figures:
            metadata[key] = float(figures[key])
    if rejects_path and result.rejects:
        metadata["rejects_uri"] = lake.uri(rejects_path)
        context.log.warning(
            f"{result.rows_rejected} row(s) of {name} quarantined in {lake.uri(rejects_path)}"
        )
    for problem in checks.failed(outcomes):
        context.log.error(f"blocking check failed, downstream steps will not run: {problem}")
    return dg.MaterializeResult(
        metadata=metadata,
        data_version=dg.DataVersion(checksum),
        check_results=checks.results(outcomes),
    )


def build_lake_trip_asset(service: str) -> dg.AssetsDefinition:
    contract = contract_for(service)
    key = dg.AssetKey(["lake", f"{service}_tripdata"])

    @dg.asset(
        key=key,
        group_name="lake",
        partitions_def=monthly_partitions,
        backfill_policy=ONE_MONTH_PER_RUN,
        deps=[dg.AssetKey(["raw", f"{service}_tripdata"])],
        code_version="2",
        automation_condition=FOLLOW_UPSTREAM,
        kinds={"parquet", "duckdb"},
        metadata={"dagster/column_schema": table_schema(contract)},
        check_specs=checks.specs(key, TRIP_BLOCKING, quality.warning_names(service, contract)),
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
            service,
        )

    return lake_trips


LAKE_ZONES_KEY = dg.AssetKey(["lake", "taxi_zones"])


@dg.asset(
    key=LAKE_ZONES_KEY,
    group_name="lake",
    deps=[dg.AssetKey(["raw", "taxi_zones"])],
    code_version="2",
    automation_condition=FOLLOW_UPSTREAM,
    kinds={"parquet", "duckdb"},
    metadata={"dagster/column_schema": table_schema(TAXI_ZONES)},
    check_specs=checks.specs(LAKE_ZONES_KEY, ZONE_BLOCKING),
)
def lake_taxi_zones(
    context: dg.AssetExecutionContext, lake: LakeStorage, ingest: IngestPolicy
) -> dg.MaterializeResult:
    """The zone lookup as Parquet (location_id, borough, zone, service_zone)."""
    return _convert(
        context,
        lake,
        ingest,
        TAXI_ZONES,
        layout.RAW_ZONES_PATH,
        layout.LAKE_ZONES_PATH,
        None,
        None,
        None,
    )


lake_assets: list[dg.AssetsDefinition] = [build_lake_trip_asset(s) for s in SERVICES] + [
    lake_taxi_zones
]
