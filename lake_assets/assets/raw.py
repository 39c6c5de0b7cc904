"""raw/*: each published file landed in the lake byte for byte."""

import time

import dagster as dg

from lake_assets import fetch, layout
from lake_assets.partitions import monthly_partitions, partition_month
from lake_assets.resources import LakeStorage, TripSource
from lake_assets.schemas import SERVICES

# Transient source failures (5xx, timeouts, resets) are retried with growing, jittered delays;
# a missing month or a corrupt file fails at once (see _land).
SOURCE_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def _land(
    context: dg.AssetExecutionContext, source: TripSource, lake: LakeStorage, url: str, path: str
) -> dg.MaterializeResult:
    started = time.monotonic()
    try:
        with lake.open_write(path) as out:
            result = source.download(url, out)
    except fetch.TransientSourceError:
        raise  # the retry policy takes it from here
    except fetch.SourceError as e:
        raise dg.Failure(description=str(e), allow_retries=False) from e
    seconds = time.monotonic() - started
    context.log.info(f"landed {url} as {lake.uri(path)} ({result.bytes} bytes)")
    return dg.MaterializeResult(
        metadata={
            "source_url": dg.MetadataValue.url(url) if url.startswith("http") else url,
            "uri": lake.uri(path),
            "bytes": result.bytes,
            "sha256": result.sha256,
            "gzip": result.gzip,
            "seconds": round(seconds, 3),
        },
        data_version=dg.DataVersion(result.sha256),
    )


def build_raw_trip_asset(service: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["raw", f"{service}_tripdata"],
        group_name="raw",
        partitions_def=monthly_partitions,
        retry_policy=SOURCE_RETRY,
        code_version="1",
        kinds={"csv"},
        description=(
            f"The {service} trip file for the month, exactly as published (TLC_SOURCE_URL), "
            "streamed into the lake; a cut gzip stream or HTTP error fails the step."
        ),
    )
    def raw_trips(
        context: dg.AssetExecutionContext, source: TripSource, lake: LakeStorage
    ) -> dg.MaterializeResult:
        month = partition_month(context)
        url = source.trip_url(service, month)
        return _land(
            context, source, lake, url, layout.raw_trip_path(service, month, layout.url_suffix(url))
        )

    return raw_trips


@dg.asset(
    key=["raw", "taxi_zones"],
    group_name="raw",
    retry_policy=SOURCE_RETRY,
    code_version="1",
    kinds={"csv"},
)
def raw_taxi_zones(
    context: dg.AssetExecutionContext, source: TripSource, lake: LakeStorage
) -> dg.MaterializeResult:
    """The TLC taxi zone lookup CSV (TLC_ZONES_URL), exactly as published."""
    return _land(context, source, lake, source.zones_url(), layout.RAW_ZONES_PATH)


raw_assets: list[dg.AssetsDefinition] = [build_raw_trip_asset(s) for s in SERVICES] + [
    raw_taxi_zones
]
