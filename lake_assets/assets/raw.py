"""raw/*: each published file landed in the lake byte for byte."""

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from lake_assets import fetch, identity, redaction, steps
from lake_assets.assets import history
from lake_assets.partitions import ONE_MONTH_PER_RUN, partition_month
from lake_assets.resources import LakeStorage, TripSource
from lake_assets.schemas import SERVICES

# Transient source failures (5xx, timeouts, resets) are retried with growing, jittered delays;
# a missing month or a corrupt file fails at once (see _land).
SOURCE_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


# A long download says how far it is in the run's log this often.
PROGRESS_SECONDS = 5.0


def _progress_log(context: dg.AssetExecutionContext, url: str) -> Callable[[int, int | None], None]:
    """A download progress callback that logs bytes of total and the rate every few seconds."""
    started = last = time.monotonic()

    def log(done: int, total: int | None) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_SECONDS:
            return
        last = now
        rate = done / (now - started) / 2**20
        of = f" of {total / 2**20:,.1f} MiB ({done / total:.0%})" if total else ""
        context.log.info(f"{url}: {done / 2**20:,.1f} MiB{of} at {rate:,.1f} MiB/s")

    return log


def _verified_landing(lake: LakeStorage, previous: dict) -> str | None:
    """Where the last landing's bytes are now (still a candidate, or promoted), verified by
    their sha256; None when neither place holds them (deleted, replaced, rejected)."""
    sha = previous.get("sha256")
    for path in (previous.get("path"), previous.get("promoted_path")):
        if sha and path and lake.exists(path):
            with lake.local_copy(path) as local:
                if fetch.file_sha256(local) == sha:
                    return path
    return None


# What a user can change when a download waits too long (the Dagster-free fetch module does not
# know the settings' names).
_SETTING_HINTS = {
    fetch.ReadTimedOut: "TLC_HTTP_TIMEOUT sets how long one read may wait",
    fetch.DeadlineExceeded: "TLC_DOWNLOAD_DEADLINE sets the deadline",
}


def _retryable(e: BaseException) -> bool:
    """Failures a later attempt can get past: the source's 5xx/timeouts and dropped connections.
    Everything else (a 404, a corrupt file, a lake folder that cannot exist, a full disk) fails
    the step at once."""
    return isinstance(e, fetch.TransientSourceError | ConnectionError | TimeoutError)


def _download(
    context: dg.AssetExecutionContext,
    source: TripSource,
    url: str,
    shown: str,
    staged: Path,
    etag: str | None,
) -> fetch.FetchResult:
    """Stream url into staged, conditionally on the ETag the source gave last time."""
    try:
        with open(staged, "wb") as out:
            return source.download(url, out, etag, progress=_progress_log(context, shown))
    except OSError as e:
        if e.errno == errno.ENOSPC and not e.filename:
            # A write to an open file does not say which file: name it for the user.
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(staged)) from None
        raise


def _as_failure(e: Exception) -> Exception:
    """What the step raises for e, its text redacted: a transient error stays retryable (with
    the setting to turn when it waited too long); anything else fails at once."""
    text = redaction.redact_urls(str(e))
    hint = _SETTING_HINTS.get(type(e))
    if hint:
        return type(e)(f"{text} ({hint})")
    if _retryable(e):
        return fetch.TransientSourceError(
            text if isinstance(e, fetch.SourceError) else f"{type(e).__name__}: {text}"
        )
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return dg.Failure(
            description=(
                f"no space left on the device holding {e.filename or 'the lake scratch folder'} "
                "while landing the download: free space there, or point LAKE_DIR (or the "
                "object store's scratch folder) at a larger disk"
            ),
            allow_retries=False,
        )
    described = text if isinstance(e, fetch.SourceError) else f"{type(e).__name__}: {text}"
    return dg.Failure(description=described, allow_retries=False)


def _refuse_rejected(lake: LakeStorage, promoted: str, url: str, sha256: str) -> None:
    """Fails at once when the source still serves bytes the lake step rejected: converting them
    again can only fail again."""
    rejection = steps.read_rejection(lake, promoted)
    if rejection is not None and rejection.sha256 == sha256:
        record = lake.uri(identity.rejection_record_path(promoted))
        raise dg.Failure(
            description=(
                f"the source still serves the file rejected by run {rejection.run_id}: "
                f"{rejection.reason} ({url}, sha256 {sha256[:12]}, kept at {rejection.uri}). "
                f"Fix the source, or delete {record} to convert these bytes again."
            ),
            metadata={"rejected_candidate_uri": rejection.uri, "rejected_by_run": rejection.run_id},
            allow_retries=False,
        )


def _obtain(
    context: dg.AssetExecutionContext,
    source: TripSource,
    lake: LakeStorage,
    url: str,
    shown: str,
    previous: dict,
    landed: str | None,
    final_path: Callable[[str], str],
) -> tuple[str, str, fetch.FetchResult | None]:
    """(why the source is unchanged, or "" when new bytes landed; where the bytes are; the
    download, if one was made). Asks the source only with the validators it gave for bytes
    verifiably in the lake: its ETag in a conditional GET, else its Last-Modified and size by a
    HEAD request (a Last-Modified alone does not tell a file copied with its time kept)."""
    # Each possible candidate as this run first saw it (its publish is conditional on that).
    seen = {s: lake.version(identity.candidate_path(final_path(s))) for s in identity.RAW_SUFFIXES}
    if landed and not previous.get("etag"):
        probe = source.probe(url)
        if probe is not None and fetch.unchanged_since(probe, previous, size_alone=False):
            return "the source's Last-Modified and size are those of the landed file", landed, None
    etag = previous.get("etag") if landed else None
    with lake.staging_dir() as staging:
        staged = staging / "download"
        result = _download(context, source, url, shown, staged, etag or None)
        if result.not_modified:
            if not etag:
                raise fetch.SourceError(
                    f"{shown}: the server answered 304 Not Modified to a request without "
                    "validators (a broken proxy or CDN); nothing was downloaded"
                )
            return "the source answered 304 Not Modified to its ETag", landed, result
        if landed and result.sha256 == previous.get("sha256"):
            return "the source's bytes have the sha256 of the landed file", landed, result
        _refuse_rejected(lake, final_path(result.suffix), shown, result.sha256)
        candidate = identity.candidate_path(final_path(result.suffix))
        for suffix in identity.RAW_SUFFIXES:
            other = identity.candidate_path(final_path(suffix))
            if other != candidate:
                lake.delete(other)  # one candidate per month, whatever its format
        lake.put_file(staged, candidate, seen[result.suffix])
    return "", candidate, result


def _land(
    context: dg.AssetExecutionContext,
    source: TripSource,
    lake: LakeStorage,
    key: dg.AssetKey,
    url: str,
    final_path: Callable[[str], str],
) -> dg.MaterializeResult:
    """Download url; land new bytes as a candidate beside the good file (the lake step promotes
    it once it converts). final_path(suffix) names the promoted file for the bytes' suffix.

    Always materializes: a source that still serves the landed bytes (304 to the validators it
    gave, or the same sha256) lands nothing new, and the materialization names where those
    bytes are; the steps downstream decide from the data whether they have work to do.
    """
    started = time.monotonic()
    # What logs, metadata and errors show: the URL without credentials or signatures.
    shown = redaction.redact_url(url)
    partition = context.partition_key if context.has_partition_key else None
    previous = history.latest_metadata(context.instance, key, partition)
    landed = _verified_landing(lake, previous) if previous.get("source_url") == shown else None
    try:
        unchanged, landed, result = _obtain(
            context, source, lake, url, shown, previous, landed, final_path
        )
    except dg.Failure:
        raise
    except Exception as e:
        raise _as_failure(e) from None  # no cause: its text may hold the URL's secrets
    if unchanged:
        context.log.info(f"{shown} unchanged since it was landed ({unchanged}): {lake.uri(landed)}")
        facts = {k: previous.get(k, "") for k in ("bytes", "sha256", "gzip", "etag")}
        facts["last_modified"] = previous.get("last_modified", "")
        if result is not None:
            # The same bytes under new validators (republished, or moved): the schedules and
            # sensors compare with these from now on.
            facts["etag"] = result.etag or facts["etag"]
            facts["last_modified"] = result.last_modified or facts["last_modified"]
    else:
        context.log.info(f"landed {shown} as {lake.uri(landed)} ({result.bytes} bytes)")
        facts = {
            "bytes": result.bytes,
            "sha256": result.sha256,
            "gzip": result.gzip,
            "etag": result.etag or "",
            "last_modified": result.last_modified or "",
        }
    if result is not None:
        # Where the bytes came from, after any redirect.
        facts["fetched_from"] = redaction.redact_url(result.fetched_from or url)
    promoted = identity.promoted_path(landed) if identity.is_candidate(landed) else landed
    return dg.MaterializeResult(
        metadata={
            "source_url": shown,
            # Where the bytes are now, and where they will be once the lake step promotes them.
            "path": landed,
            "uri": lake.uri(landed),
            "promoted_path": promoted,
            "promoted_uri": lake.uri(promoted),
            **facts,
            "unchanged": unchanged or "no: new bytes landed",
            "seconds": round(time.monotonic() - started, 3),
        },
        data_version=dg.DataVersion(str(facts["sha256"])),
    )


def build_raw_trip_asset(service: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = dg.AssetKey(identity.trip_key(identity.RAW, service))

    @dg.asset(
        key=key,
        group_name=identity.RAW,
        partitions_def=partitions,
        backfill_policy=ONE_MONTH_PER_RUN,
        retry_policy=SOURCE_RETRY,
        code_version="4",
        kinds={"csv"},
        description=(
            f"The {service} trip file for the month, exactly as published (TLC_SOURCE_URL), "
            "streamed into the lake as a candidate that replaces the good file only once the "
            "lake step has converted it; a cut gzip stream or HTTP error fails the step. An "
            "unchanged source (304, or the same sha256) lands nothing new; bytes the lake step "
            "rejected before fail at once."
        ),
    )
    def raw_trips(
        context: dg.AssetExecutionContext, source: TripSource, lake: LakeStorage
    ) -> dg.MaterializeResult:
        month = partition_month(context)
        url = source.trip_url(service, month)
        return _land(
            context,
            source,
            lake,
            key,
            url,
            lambda suffix: identity.raw_trip_path(service, month, suffix),
        )

    return raw_trips


RAW_ZONES_KEY = dg.AssetKey(identity.zones_key(identity.RAW))


@dg.asset(
    key=RAW_ZONES_KEY,
    group_name=identity.RAW,
    retry_policy=SOURCE_RETRY,
    code_version="4",
    kinds={"csv"},
)
def raw_taxi_zones(
    context: dg.AssetExecutionContext, source: TripSource, lake: LakeStorage
) -> dg.MaterializeResult:
    """The TLC taxi zone lookup CSV (TLC_ZONES_URL), exactly as published."""
    return _land(
        context, source, lake, RAW_ZONES_KEY, source.zones_url(), lambda _: identity.RAW_ZONES_PATH
    )


def build_raw_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [build_raw_trip_asset(s, partitions) for s in SERVICES] + [raw_taxi_zones]
