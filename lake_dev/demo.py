"""`make demo`: an offline mirror, then raw -> lake -> warehouse -> marts through the Dagster CLI.

Reads the same settings as the code location (the Makefile points TLC_SOURCE_URL at the mirror),
so what it prints is what `make dev` shows in the UI.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import dagster as dg

from lake_assets import identity
from lake_assets.resources.build import build_backend
from lake_assets.schemas import MART_CONTRACTS, SERVICES, TAXI_ZONES
from lake_assets.settings import Settings
from lake_dev import emulators, generator


def _mirror_root(settings: Settings) -> Path:
    """The folder a file:// TLC_SOURCE_URL serves from: the part before /{service}/."""
    parsed = urllib.parse.urlparse(settings.tlc_source_url)
    if parsed.scheme != "file":
        raise SystemExit(f"the demo needs a file:// TLC_SOURCE_URL, not {settings.tlc_source_url}")
    path = urllib.request.url2pathname(parsed.path)
    return Path(path.split("{service}")[0])


_RUN_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_STEP_ENDED = (" - STEP_SUCCESS - ", " - STEP_FAILURE - ")


def step_line(entry: dg.EventLogEntry) -> str:
    """A materialization as one progress line: asset, month, rows, seconds (what the step
    reported; raw reports bytes, not rows)."""
    event = entry.dagster_event
    assert event is not None and event.asset_key is not None
    meta = event.step_materialization_data.materialization.metadata
    rows = meta.get("dagster/row_count")
    size = f"{rows.value:>9,} rows" if rows is not None else f"{meta['bytes'].value:>9,} bytes"
    seconds = meta.get("seconds")
    took = f"{seconds.value:6.1f}s" if seconds is not None else ""
    month = event.partition or "-"
    return f"    {event.asset_key.to_user_string():<34} {month:<8} {size}  {took}".rstrip()


def _materialize(
    select: str, partition: str | None, env: dict[str, str], instance: dg.DagsterInstance
) -> float:
    """One CLI run; a line per materialization as each step ends, read from the instance the
    run writes to, so the demo is never silent for longer than a step."""
    cmd = ["dagster", "asset", "materialize", "-m", "lake_assets.definitions", "--select", select]
    if partition:
        cmd += ["--partition", partition]
    print("$ " + " ".join(cmd), flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    tail: collections.deque[str] = collections.deque(maxlen=400)
    run_id, shown = None, 0
    for line in proc.stdout:
        tail.append(line)
        run_id = run_id or (m.group(0) if (m := _RUN_ID.search(line)) else None)
        if run_id and any(ended in line for ended in _STEP_ENDED):
            shown = _print_new_materializations(instance, run_id, shown)
    if proc.wait() != 0:
        sys.stderr.write("".join(tail))
        raise SystemExit(f"materialize failed for {select} {partition or ''}")
    if run_id:
        _print_new_materializations(instance, run_id, shown)
    return time.monotonic() - started


def _print_new_materializations(instance: dg.DagsterInstance, run_id: str, shown: int) -> int:
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    for entry in entries[shown:]:
        print(step_line(entry), flush=True)
    return len(entries)


def summary(settings: Settings) -> str:
    lake, warehouse = build_backend(settings, resolved=True)
    ds = warehouse.dataset
    where = (
        settings.duckdb_path
        if settings.lake_env == "local"
        else f"BigQuery {warehouse.table_name(TAXI_ZONES).rsplit('.', 1)[0]}"
    )
    rows: list[tuple[str, str, int]] = []
    for service in SERVICES:
        table = f"{ds}.{service}_tripdata"
        counts = warehouse.query(
            f"SELECT source_month, count(*) FROM {table} GROUP BY source_month ORDER BY 1"
        )
        rows += [(table, f"{month:%Y-%m}", n) for month, n in counts]
    [(zones,)] = warehouse.query(f"SELECT count(*) FROM {ds}.taxi_zones")
    rows.append((f"{ds}.taxi_zones", "-", zones))
    width = max(28, *(len(t) + 1 for t, _, _ in rows))
    lines = [f"warehouse {where}", f"  {'table':<{width}} {'month':<8} {'rows':>9}"]
    lines += [f"  {t:<{width}} {m:<8} {n:>9,}" for t, m, n in rows]
    lines.append(f"lake {lake.uri('x')[:-2]}")  # the lake's root, whatever its store
    for path, size in lake.list_files():
        lines.append(f"  {path}  ({size:,} bytes)")
    return "\n".join(lines)


def top_zones(settings: Settings, month: str, limit: int = 10) -> str:
    _, warehouse = build_backend(settings, resolved=True)
    ds = warehouse.dataset
    first = {"month": identity.month_of(month)}
    rows = warehouse.query(
        "SELECT service, pickup_borough, pickup_zone, trips, revenue "
        f"FROM {ds}.trips_by_zone_monthly WHERE source_month = $month "
        f"ORDER BY trips DESC, service, pickup_zone LIMIT {int(limit)}",
        first,
    )
    summary_rows = warehouse.query(
        "SELECT service, trips, revenue, avg_fare_per_mile, card_share "
        f"FROM {ds}.service_summary_monthly WHERE source_month = $month ORDER BY service",
        first,
    )
    lines = [f"top pickup zones of {month} ({ds}.trips_by_zone_monthly)"]
    lines.append(f"  {'service':<7} {'borough':<13} {'zone':<26} {'trips':>7} {'revenue':>12}")
    for service, borough, zone, trips, revenue in rows:
        money = f"{revenue:,.2f}" if revenue is not None else "-"
        lines.append(f"  {service:<7} {borough:<13} {zone:<26} {trips:>7,} {money:>12}")
    lines.append(f"services in {month} ({ds}.service_summary_monthly)")
    for service, trips, revenue, per_mile, card in summary_rows:
        extra = (
            f"revenue {revenue:,.2f}, fare/mile {per_mile:.2f}, card {card:.0%}"
            if revenue is not None
            else "no fares in fhv data"
        )
        lines.append(f"  {service:<7} {trips:>7,} trips, {extra}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--months", nargs="+", default=["2021-01", "2021-02", "2021-03"])
    p.add_argument("--rows", type=int, default=20000, help="yellow rows per month")
    p.add_argument(
        "--gcp-emulators",
        metavar="DIR",
        help="run with LAKE_ENV=gcp against GCS and BigQuery emulators started in DIR",
    )
    p.add_argument("--bqemu-python", help="bqemulator's virtualenv python (with --gcp-emulators)")
    args = p.parse_args(argv)
    # The demo's environment: this process's, plus the emulators' endpoints. Both the settings
    # and the CLI runs are given it; this process's own environment is never changed.
    env = dict(os.environ)
    env.setdefault("DAGSTER_HOME", str(Path("dagster_home").resolve()))
    if args.gcp_emulators:
        emu = emulators.start(Path(args.gcp_emulators), bqemu_python=args.bqemu_python)
        env.update(emu.env())
        print(f"GCS emulator {emu.storage_host}, BigQuery emulator {emu.bigquery_host}")
        try:
            return _run(args, env)
        finally:
            emu.stop()
    return _run(args, env)


def _run(args: argparse.Namespace, env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    months = [identity.month_of(m) for m in args.months]
    root = _mirror_root(settings)
    rows = generator.rows_per_service(args.rows)
    print(f"writing an offline mirror to {root}", flush=True)
    generator.write_mirror(root, SERVICES, months, rows)
    zones = ",".join(
        identity.key_string(identity.zones_key(layer)) for layer in identity.TRIP_LAYERS
    )
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        total = _materialize(zones, None, env, instance)
        trips = ",".join(
            identity.trip_selection(SERVICES)
            + [identity.key_string(identity.mart_key(c.name)) for c in MART_CONTRACTS]
        )
        for month in args.months:
            seconds = _materialize(trips, month, env, instance)
            total += seconds
            print(f"  {month}: raw -> lake -> warehouse -> marts in {seconds:.1f}s", flush=True)
    months_said = f"{len(args.months)} month{'s' if len(args.months) != 1 else ''}"
    print(f"  {months_said} and the zones in {total:.1f}s")
    print()
    print(summary(settings))
    print()
    print(top_zones(settings, args.months[-1]))


if __name__ == "__main__":
    main()
