"""lake/*: typed Parquet, one fixed schema per service, derived from the raw file."""

from collections.abc import Callable, Iterator
from datetime import date

import dagster as dg

from lake_assets import convert, identity, quality, steps
from lake_assets.assets import checks, ranges
from lake_assets.automation import FOLLOW_UPSTREAM
from lake_assets.partitions import RANGE_IN_ONE_RUN, partition_months
from lake_assets.resources import IngestPolicy, LakeStorage
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
    contract: TableContract,
    month: date | None,
    build: Callable[[], steps.LakeFile],
) -> ranges.MonthDone:
    """build() makes the lake file; this turns it (or its bad input) into what Dagster records."""
    try:
        built = build()
    except convert.BadInputError as e:
        hint = (
            " Set TLC_BAD_ROWS=quarantine to divert bad rows to a rejects file instead."
            if e.line is not None and month is not None
            else ""
        )
        raise dg.Failure(
            description=f"{e}{hint}",
            metadata={"file": e.file, "line": e.line, "column": e.column, "value": e.value},
            allow_retries=False,
        ) from e
    result, seconds, figures = built.result, built.seconds, built.figures
    metadata: dict = {
        "dagster/row_count": result.rows_written,
        "rows_read": result.rows_read,
        "rows_rejected": result.rows_rejected,
        "uri": built.uri,
        "bytes": built.bytes,
        "sha256": built.sha256,
        "source_uri": built.source_uri,
        # The raw version this month was built from; the raw step compares it to decide whether
        # an unchanged source still needs this layer rebuilt.
        "raw_sha256": built.raw_sha256,
        "raw_uri": built.raw_uri,
        "source_header": ",".join(result.header),
        "columns_absent_in_source": ", ".join(result.missing_columns) or "none",
        "dagster/column_schema": table_schema(contract),
        "seconds": round(seconds, 3),
        "rows_per_second": round(result.rows_read / seconds) if seconds > 0 else 0,
    }
    # The figures the checks judge, per month, so the UI plots them across partitions.
    for key in quality.recorded_figures(identity.LAKE, contract):
        if key in figures:
            metadata[key] = float(figures[key])
    if built.rejects_uri:
        metadata["rejects_uri"] = built.rejects_uri
        context.log.warning(
            f"{result.rows_rejected} row(s) of {built.source_uri} quarantined in "
            f"{built.rejects_uri}"
        )
    return ranges.MonthDone(month, metadata, built.outcomes)


def build_lake_trip_asset(service: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    contract = contract_for(service)
    key = dg.AssetKey(identity.trip_key(identity.LAKE, service))

    @dg.asset(
        key=key,
        group_name=identity.LAKE,
        partitions_def=partitions,
        backfill_policy=RANGE_IN_ONE_RUN,
        deps=[dg.AssetKey(identity.trip_key(identity.RAW, service))],
        # No data version of our own: Dagster derives it from this code version and the raw
        # file's (its sha256). A hash of the Parquet bytes would not do: DuckDB's parallel writer
        # may cut a large month's row groups a few rows apart from one build to the next, and the
        # same rows would then mark everything downstream stale.
        code_version="2",
        automation_condition=FOLLOW_UPSTREAM,
        kinds={"parquet", "duckdb"},
        metadata={"dagster/column_schema": table_schema(contract)},
        check_specs=checks.specs(key, identity.LAKE, contract, partitions),
        description=(
            f"The month's {service} trips as zstd Parquet with the fixed {contract.name} schema. "
            "Rows that do not fit fail the step, or go to a rejects file with "
            "TLC_BAD_ROWS=quarantine."
        ),
    )
    def lake_trips(
        context: dg.AssetExecutionContext,
        lake: LakeStorage,
        ingest: IngestPolicy,
    ) -> Iterator:
        def build(month: date) -> ranges.MonthDone:
            raw = identity.raw_trip_paths(service, month)
            out = identity.lake_trip_path(service, month)
            rejects = identity.rejects_path(service, month)
            return _convert(
                context,
                contract,
                month,
                lambda: steps.build_lake_file(
                    lake, ingest, contract, raw, out, rejects, month, service
                ),
            )

        yield from ranges.run_months(
            context,
            key,
            partition_months(context),
            build,
            ["rows", "rejected", "bytes"],
            lambda d: (
                d.metadata["dagster/row_count"],
                d.metadata["rows_rejected"],
                d.metadata["bytes"],
            ),
        )

    return lake_trips


LAKE_ZONES_KEY = dg.AssetKey(identity.zones_key(identity.LAKE))


@dg.asset(
    key=LAKE_ZONES_KEY,
    group_name=identity.LAKE,
    deps=[dg.AssetKey(identity.zones_key(identity.RAW))],
    code_version="2",
    automation_condition=FOLLOW_UPSTREAM,
    kinds={"parquet", "duckdb"},
    metadata={"dagster/column_schema": table_schema(TAXI_ZONES)},
    check_specs=checks.specs(LAKE_ZONES_KEY, identity.LAKE, TAXI_ZONES),
)
def lake_taxi_zones(
    context: dg.AssetExecutionContext, lake: LakeStorage, ingest: IngestPolicy
) -> Iterator:
    """The zone lookup as Parquet (location_id, borough, zone, service_zone)."""
    raw, out = [identity.RAW_ZONES_PATH], identity.LAKE_ZONES_PATH
    try:
        done = _convert(
            context,
            TAXI_ZONES,
            None,
            lambda: steps.build_lake_file(lake, ingest, TAXI_ZONES, raw, out, None, None, None),
        )
    except steps.BlockingCheckFailed as e:
        yield from ranges.blocked(None, e)
        return
    yield dg.MaterializeResult(metadata=done.metadata, check_results=checks.results(done.outcomes))


def build_lake_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_lake_trip_asset(s, partitions) for s in SERVICES] + [lake_taxi_zones]
