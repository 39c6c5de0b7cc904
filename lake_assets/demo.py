"""`make demo`: an offline mirror, then raw -> lake -> warehouse -> marts through the Dagster CLI.

Reads the same settings as the code location (the Makefile points TLC_SOURCE_URL at the mirror),
so what it prints is what `make dev` shows in the UI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import date
from pathlib import Path

from lake_assets import generator
from lake_assets.schemas import SERVICES
from lake_assets.settings import Settings


def _mirror_root(settings: Settings) -> Path:
    """The folder a file:// TLC_SOURCE_URL serves from: the part before /{service}/."""
    parsed = urllib.parse.urlparse(settings.tlc_source_url)
    if parsed.scheme != "file":
        raise SystemExit(f"the demo needs a file:// TLC_SOURCE_URL, not {settings.tlc_source_url}")
    path = urllib.request.url2pathname(parsed.path)
    return Path(path.split("{service}")[0])


def _materialize(select: str, partition: str | None) -> float:
    cmd = ["dagster", "asset", "materialize", "-m", "lake_assets.definitions", "--select", select]
    if partition:
        cmd += ["--partition", partition]
    print("$ " + " ".join(cmd), flush=True)
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        raise SystemExit(f"materialize failed for {select} {partition or ''}")
    return time.monotonic() - started


def summary(settings: Settings) -> str:
    import duckdb

    lines = []
    con = duckdb.connect(settings.duckdb_path, read_only=True)
    try:
        lines.append(f"warehouse {settings.duckdb_path}")
        lines.append(f"  {'table':<28} {'month':<8} {'rows':>9}")
        for service in SERVICES:
            for month, rows in con.execute(
                f"SELECT strftime(source_month, '%Y-%m'), count(*) "
                f"FROM nyc_taxi.{service}_tripdata GROUP BY 1 ORDER BY 1"
            ).fetchall():
                lines.append(f"  nyc_taxi.{service + '_tripdata':<19} {month:<8} {rows:>9,}")
        zones = con.execute("SELECT count(*) FROM nyc_taxi.taxi_zones").fetchone()[0]
        lines.append(f"  {'nyc_taxi.taxi_zones':<28} {'-':<8} {zones:>9,}")
    finally:
        con.close()
    lake = Path(settings.lake_dir)
    lines.append(f"lake {lake.resolve()}")
    for path in sorted(p for p in lake.rglob("*") if p.is_file() and ".staging" not in p.parts):
        lines.append(f"  {path.relative_to(lake)}  ({path.stat().st_size:,} bytes)")
    return "\n".join(lines)


def top_zones(settings: Settings, month: str, limit: int = 10) -> str:
    import duckdb

    con = duckdb.connect(settings.duckdb_path, read_only=True)
    try:
        rows = con.execute(
            "SELECT service, pickup_borough, pickup_zone, trips, revenue "
            "FROM nyc_taxi.trips_by_zone_monthly WHERE strftime(source_month, '%Y-%m') = ? "
            "ORDER BY trips DESC, service, pickup_zone LIMIT ?",
            [month, limit],
        ).fetchall()
        summary_rows = con.execute(
            "SELECT service, trips, revenue, avg_fare_per_mile, card_share "
            "FROM nyc_taxi.service_summary_monthly WHERE strftime(source_month, '%Y-%m') = ? "
            "ORDER BY service",
            [month],
        ).fetchall()
    finally:
        con.close()
    lines = [f"top pickup zones of {month} (nyc_taxi.trips_by_zone_monthly)"]
    lines.append(f"  {'service':<7} {'borough':<13} {'zone':<26} {'trips':>7} {'revenue':>12}")
    for service, borough, zone, trips, revenue in rows:
        money = f"{revenue:,.2f}" if revenue is not None else "-"
        lines.append(f"  {service:<7} {borough:<13} {zone:<26} {trips:>7,} {money:>12}")
    lines.append(f"services in {month} (nyc_taxi.service_summary_monthly)")
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
    args = p.parse_args(argv)
    settings = Settings.from_env()
    months = [date(int(m[:4]), int(m[5:7]), 1) for m in args.months]
    root = _mirror_root(settings)
    rows = {"yellow": args.rows, "green": max(1, args.rows // 4), "fhv": max(1, args.rows // 2)}
    print(f"writing an offline mirror to {root}", flush=True)
    generator.write_mirror(root, SERVICES, months, rows)
    os.environ.setdefault("DAGSTER_HOME", str(Path("dagster_home").resolve()))
    _materialize("raw/taxi_zones,lake/taxi_zones,warehouse/taxi_zones", None)
    trips = ",".join(
        [f"{layer}/{s}_tripdata" for s in SERVICES for layer in ("raw", "lake", "warehouse")]
        + ["marts/trips_by_zone_monthly", "marts/service_summary_monthly"]
    )
    for month in args.months:
        seconds = _materialize(trips, month)
        print(f"  {month}: raw -> lake -> warehouse -> marts in {seconds:.1f}s")
    print()
    print(summary(settings))
    print()
    print(top_zones(settings, args.months[-1]))


if __name__ == "__main__":
    main()
