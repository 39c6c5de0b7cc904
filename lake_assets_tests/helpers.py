"""Small helpers the asset tests share."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
import duckdb

from lake_assets import identity
from lake_assets.schemas import MART_CONTRACTS, SERVICES


def trip_selection(*services: str, layers: tuple[str, ...] = identity.TRIP_LAYERS) -> list[str]:
    return identity.trip_selection(services or SERVICES, layers)


ZONES = [identity.key_string(identity.zones_key(layer)) for layer in identity.TRIP_LAYERS]
MARTS = [identity.key_string(identity.mart_key(c.name)) for c in MART_CONTRACTS]


def materialize(defs: dg.Definitions, selection, partition: str | None = None, **kwargs):
    return dg.materialize(
        list(defs.assets),
        selection=selection,
        partition_key=partition,
        resources=defs.resources,
        raise_on_error=False,
        **kwargs,
    )


def month_counts(duckdb_path: str, table: str) -> dict[str, int]:
    con = duckdb.connect(duckdb_path, read_only=True)
    try:
        rows = con.execute(
            f"SELECT strftime(source_month, '%Y-%m'), count(*) FROM nyc_taxi.{table} "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def summary_trips(duckdb_path: str, month: str) -> dict[str, int]:
    """Trips per service of a month in marts/service_summary_monthly."""
    con = duckdb.connect(duckdb_path, read_only=True)
    try:
        rows = con.execute(
            "SELECT service, trips FROM nyc_taxi.service_summary_monthly WHERE source_month = ?",
            [f"{month}-01"],
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def metadata(result, key: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == key:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise KeyError(key)


def steps_with(result, event_type: str) -> set[str]:
    """The step keys of a result's events of one type (STEP_FAILURE, STEP_UP_FOR_RETRY, ...)."""
    return {e.step_key for e in result.all_events if e.event_type_value == event_type}


def sha256_of(path) -> str:
    from lake_assets.fetch import file_sha256

    return file_sha256(path)


def failure_message(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "expected a failed step"
    info = failures[0].event_specific_data.error
    texts = []
    while info is not None:
        texts.append(info.message)
        info = info.cause
    return "\n".join(texts)


def failed_step(result) -> str:
    return [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0].step_key


def hold_duckdb_lock(path: str, seconds: float) -> subprocess.Popen:
    """Another process that opens path for writing and keeps it for seconds (or until killed)."""
    code = (
        "import duckdb, sys, time\n"
        "c = duckdb.connect(sys.argv[1])\n"
        "print('locked', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "c.close()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, path, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


# Rows per service of a month every service loads (the checks' and the marts' tests).
SERVICE_ROWS = {"yellow": 700, "green": 300, "fhv": 400}


def lake_files(settings) -> list[str]:
    """Every file under the lake root, relative to it."""
    from pathlib import Path

    root = Path(settings.lake_dir)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def load_every_service(http_server, defs: dg.Definitions, month: str):
    """Zones, then a month of every service (SERVICE_ROWS) through the warehouse and the marts."""
    for service in SERVICES:
        http_server.publish(service, month, SERVICE_ROWS[service])
    assert materialize(defs, ZONES).success
    result = materialize(defs, trip_selection() + MARTS, month)
    assert result.success
    return result


def poll(condition, timeout: float, interval: float):
    """condition()'s first truthy value within timeout seconds, asked every interval; else None."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return None
