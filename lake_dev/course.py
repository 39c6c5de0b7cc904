"""`make bench-course`: the zoomcamp course's data loaded through the deployment, timed.

The course loads yellow and green 2019-2020 and fhv 2019: 60 monthly files, 160,070,315 rows.
This generates those 60 months at their row counts (times --scale), serves them as an offline
mirror, starts `make deploy-local`'s stack (PostgreSQL, code server, webserver, daemon) before
the clock, and then times one backfill of raw -> lake -> warehouse -> marts launched through the
webserver's GraphQL API as the UI launches it, queued and run by the daemon with the
deployment's limits. Then the same files go through the zoomcamp-style pandas flow, one month per
process as its flows run, as the reference. The figures go into docs/benchmark.md.

The months' row counts: the course's totals are the DataTalksClub CSV release's (yellow
2019-2020 109,047,518, green 7,778,101, fhv 2019 43,244,696). Per month, only the TLC's
re-issued Parquet files' counts could be found offline (`file_num_rows` as listed in
github.com/lykmapipo/NYC-TLC-Trip-Data, data/trips-metadata, 2023-12); they differ from the
CSV release by 0.2 % (yellow), 3.3 % (green) and 0.04 % (fhv) in total. Each service's months
keep the Parquet counts' shape, scaled to the course's total exactly.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import date
from pathlib import Path

from lake_dev import generator

COURSE_TOTALS = {"yellow": 109_047_518, "green": 7_778_101, "fhv": 43_244_696}
# Rows of each month of the TLC's Parquet files, January to December.
TLC_PARQUET_ROWS = {
    ("yellow", 2019): (
        7_696_617, 7_049_370, 7_866_620, 7_475_949, 7_598_445, 6_971_560,
        6_310_419, 6_073_357, 6_567_788, 7_213_891, 6_878_111, 6_896_317,
    ),
    ("yellow", 2020): (
        6_405_008, 6_299_367, 3_007_687, 238_073, 348_415, 549_797,
        800_412, 1_007_286, 1_341_017, 1_681_132, 1_509_000, 1_461_898,
    ),
    ("green", 2019): (
        672_105, 615_594, 643_063, 567_852, 545_452, 506_238,
        470_743, 449_695, 449_063, 476_386, 449_500, 455_294,
    ),
    ("green", 2020): (
        447_770, 398_632, 223_496, 35_644, 57_361, 63_110,
        72_258, 81_063, 87_987, 95_120, 88_605, 83_130,
    ),
    ("fhv", 2019): (
        23_159_064, 1_707_650, 1_475_569, 1_937_850, 2_073_045, 2_009_888,
        1_947_743, 1_880_408, 1_248_520, 1_897_856, 1_879_487, 2_044_196,
    ),
}  # fmt: skip
FIRST, LAST = "2019-01", "2020-12"
TIMEOUT_SECONDS = 4 * 3600


def plan(scale: float) -> dict[str, dict[date, int]]:
    """Rows per service and month: the Parquet counts' shape, summing to round(total * scale)
    for each service exactly (largest remainder), except that no month gets fewer than one row."""
    months: dict[str, dict[date, int]] = {}
    for service, total in COURSE_TOTALS.items():
        weights = {
            date(year, m + 1, 1): rows
            for (s, year), counts in TLC_PARQUET_ROWS.items()
            if s == service
            for m, rows in enumerate(counts)
        }
        target = round(total * scale)
        exact = {m: w * target / sum(weights.values()) for m, w in weights.items()}
        shares = {m: int(x) for m, x in exact.items()}
        by_remainder = sorted(exact, key=lambda m: exact[m] - shares[m], reverse=True)
        for m in by_remainder[: target - sum(shares.values())]:
            shares[m] += 1
        months[service] = {m: max(1, n) for m, n in sorted(shares.items())}
    return months


def mirror(root: Path, scale: float, months: dict[str, dict[date, int]]) -> Path:
    """The course's files in the DataTalksClub layout, generated once per scale and generator."""
    from lake_dev.bench import generator_tag

    out = root / f"gen-{generator_tag()}" / f"course-{scale:g}"
    started = time.monotonic()
    for service, counts in months.items():
        for month, rows in counts.items():
            path = out / service / generator.month_file_name(service, month)
            if not path.exists():
                print(f"generating {rows:>11,} rows of {service} {month:%Y-%m}", flush=True)
                generator.write_month(service, month, rows, path)
    generator.write_zones(out / "misc" / "taxi_zone_lookup.csv")
    print(f"mirror ready in {time.monotonic() - started:.0f} s: {out}", flush=True)
    return out


def backfill_selection(months: dict[str, dict[date, int]]) -> list[dict]:
    """The backfill's partitions by asset: each service's months through its three layers, the
    zones once, the marts over the whole course (what the UI's backfill dialog sends)."""
    from lake_assets import identity
    from lake_assets.schemas import MART_CONTRACTS

    def entry(key: tuple[str, ...], first: date | None = None, last: date | None = None) -> dict:
        selector: dict = {"assetKey": {"path": list(key)}}
        if first and last:
            span = {"start": f"{first:%Y-%m}", "end": f"{last:%Y-%m}"}
            selector["partitions"] = {"range": span}
        return selector

    chosen = [entry(identity.zones_key(layer)) for layer in identity.TRIP_LAYERS]
    for service, counts in months.items():
        first, last = min(counts), max(counts)
        chosen += [
            entry(identity.trip_key(layer, service), first, last) for layer in identity.TRIP_LAYERS
        ]
    every = [m for counts in months.values() for m in counts]
    chosen += [entry(identity.mart_key(c.name), min(every), max(every)) for c in MART_CONTRACTS]
    return chosen


LAUNCH_BACKFILL = """
mutation($p: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $p) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message }
  }
}"""
BACKFILL_STATE = """
query($id: String!, $f: RunsFilter) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
  runsOrError(filter: $f) { ... on Runs { results { runId status } } }
}"""
ENDED = {"SUCCESS", "FAILURE", "CANCELED"}


def _wait_for_backfill(url: str, backfill: str, started: float) -> list[dict]:
    """Poll until the backfill is no longer requested and its runs have all ended."""
    from lake_dev.bench import _graphql

    variables = {"id": backfill, "f": {"tags": [{"key": "dagster/backfill", "value": backfill}]}}
    last_print = 0.0
    while True:
        data = _graphql(url, BACKFILL_STATE, variables)
        runs = data["runsOrError"]["results"]
        status = data["partitionBackfillOrError"]["status"]
        if status != "REQUESTED" and runs and all(r["status"] in ENDED for r in runs):
            return runs
        now = time.monotonic()
        if now - last_print >= 30:
            done = sum(r["status"] in ENDED for r in runs)
            print(f"  {now - started:6.0f} s: {done}/{len(runs)} runs ended", flush=True)
            last_print = now
        if now - started > TIMEOUT_SECONDS:
            raise SystemExit(f"bench-course: the backfill did not end in {TIMEOUT_SECONDS} s")
        time.sleep(1)


def loaded(duckdb_path: Path) -> dict[str, int]:
    """Rows of each warehouse trip table and of the marts' months."""
    import duckdb

    from lake_assets.schemas import MART_CONTRACTS

    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        counts = {
            s: con.execute(f"SELECT count(*) FROM nyc_taxi.{s}_tripdata").fetchone()[0]
            for s in COURSE_TOTALS
        }
        for c in MART_CONTRACTS:
            sql = f"SELECT count(DISTINCT source_month) FROM nyc_taxi.{c.name}"
            counts[f"{c.name} months"] = con.execute(sql).fetchone()[0]
    finally:
        con.close()
    return counts


def through_deployment(src: Path, months: dict[str, dict[date, int]], work: Path) -> dict:
    """Start the stack (untimed), then time the course's backfill from launch to its last run's
    end, sampling the memory of the whole stack (PostgreSQL included)."""
    from lake_dev.bench import TreeSampler, _graphql, deployment

    env = {
        **generator.mirror_settings(src),
        "LAKE_DIR": str(work / "lake"),
        "DUCKDB_PATH": str(work / "warehouse.duckdb"),
        "TLC_START_MONTH": FIRST,
        "TLC_END_MONTH": LAST,
    }
    stack = deployment(work, env)
    try:
        stack.start()
        postmaster = int((stack.pgdata / "postmaster.pid").read_text().split()[0])
        pids = [postmaster, *(p.pid for p in stack.procs.values())]
        params = {"p": {"partitionsByAssets": backfill_selection(months)}}
        started = time.monotonic()
        with TreeSampler(*pids) as sampler:
            launched = _graphql(stack.url, LAUNCH_BACKFILL, params)["launchPartitionBackfill"]
            if launched["__typename"] != "LaunchBackfillSuccess":
                raise SystemExit(f"bench-course: the backfill was not launched: {launched}")
            print(f"backfill {launched['backfillId']} launched", flush=True)
            runs = _wait_for_backfill(stack.url, launched["backfillId"], started)
        wall = time.monotonic() - started
        failed = [r["runId"] for r in runs if r["status"] != "SUCCESS"]
        if failed:
            raise SystemExit(f"bench-course: runs {failed} did not succeed; see {stack.root}")
    finally:
        stack.stop()
    counts = loaded(work / "warehouse.duckdb")
    rows = sum(counts[s] for s in COURSE_TOTALS)
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(sampler.cpu, 1),
        "peak_rss_mb": round(sampler.peak / 2**20),
        "runs": len(runs),
        "rows": rows,
        "rows_per_s": round(rows / wall),
        "loaded": counts,
    }


def through_reference(src: Path, months: dict[str, dict[date, int]], work: Path) -> dict:
    """The zoomcamp-style pandas flow (bench's baseline case) over every file, one process per
    month; wall time in all, the largest month's peak memory."""
    from lake_dev.bench import _clean_env, _timed

    env = {**_clean_env(), "DAGSTER_HOME": ""}
    wall = cpu = 0.0
    peak = rows = 0
    for service, counts in months.items():
        for month in counts:
            path = src / service / generator.month_file_name(service, month)
            out = work / f"{service}-{month:%Y-%m}"
            out.mkdir(parents=True)
            cmd = [sys.executable, "-m", "lake_dev.bench", "--case", "baseline"]
            timing, (text,) = _timed(
                [[*cmd, "--src", str(path), "--work", str(out)]], env, "baseline"
            )
            result = json.loads(text.split("BENCH_RESULT ", 1)[1])
            wall, cpu = wall + timing["wall_s"], cpu + timing["cpu_s"]
            peak, rows = max(peak, timing["peak_rss_mb"]), rows + result["rows"]
            shutil.rmtree(out)
        print(f"  reference: {service} done, {wall:.0f} s so far", flush=True)
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_mb": round(peak),
        "runs": sum(len(c) for c in months.values()),
        "rows": rows,
        "rows_per_s": round(rows / wall),
    }


def table(report: dict) -> str:
    d, r = report["deployment"], report["reference"]
    expected = report["expected"]
    files = sum(len(v) for v in report["months"].values())
    lines = [
        f"The course at scale {report['scale']:g}: {files} monthly files, "
        f"{sum(expected.values()):,} rows ("
        + ", ".join(f"{s} {n:,}" for s, n in expected.items())
        + f"), {report['source_mb']:,.0f} MB of gzip CSV",
        "",
        "| way | runs | wall s | wall | CPU s | peak RSS MB | rows/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, x in (("lake_assets, backfill through the deployment", d), ("zoomcamp flow", r)):
        minutes = f"{int(x['wall_s'] // 60)} min {x['wall_s'] % 60:02.0f} s"
        lines.append(
            f"| {name} | {x['runs']} | {x['wall_s']:.0f} | {minutes} | {x['cpu_s']:.0f} | "
            f"{x['peak_rss_mb']:,} | {x['rows_per_s']:,} |"
        )
    marts = {k: v for k, v in d["loaded"].items() if k.endswith(" months")}
    lines += [
        "",
        f"lake_assets took {d['wall_s'] / r['wall_s']:.2f} of the reference's time in "
        f"{d['peak_rss_mb'] / r['peak_rss_mb']:.2f} of its peak memory, and also kept the lake's "
        "Parquet, ran every check and built the marts ("
        + ", ".join(f"{k}: {v}" for k, v in marts.items())
        + "). Peak memory: the deployment's whole stack (PostgreSQL, code server, webserver, "
        "daemon and every run), against the largest month's pandas process.",
    ]
    return "\n".join(lines)


COURSE_START, COURSE_END = "<!-- bench:course:start -->", "<!-- bench:course:end -->"


def run(root: Path, scale: float) -> dict:
    months = plan(scale)
    expected = {s: sum(c.values()) for s, c in months.items()}
    src = mirror(root / "data", scale, months)
    scratch = root / "scratch"
    work = scratch / "course"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"the course through the deployment: {sum(expected.values()):,} rows", flush=True)
    report = {
        "scale": scale,
        "months": {s: {f"{m:%Y-%m}": n for m, n in c.items()} for s, c in months.items()},
        "expected": expected,
        "source_mb": round(sum(p.stat().st_size for p in src.rglob("*.csv.gz")) / 2**20, 1),
        "deployment": through_deployment(src, months, work / "deployment"),
    }
    got = {s: report["deployment"]["loaded"][s] for s in expected}
    if got != expected:
        raise SystemExit(f"bench-course: the warehouse holds {got}, the files {expected}")
    print("the same files through the zoomcamp flow", flush=True)
    report["reference"] = through_reference(src, months, work / "reference")
    if report["reference"]["rows"] != sum(expected.values()):
        raise SystemExit(f"bench-course: the reference loaded {report['reference']['rows']:,}")
    shutil.rmtree(work, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> None:
    from lake_dev import bench

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scale", type=float, default=1.0, help="fraction of each month's rows")
    p.add_argument("--root", type=Path, default=Path("build/bench"), help="cache and scratch")
    p.add_argument("--out", type=Path, default=Path("build/bench-course.json"))
    p.add_argument("--page", type=Path, help="a Markdown page whose course block to rewrite")
    args = p.parse_args(argv)
    if not 0 < args.scale <= 1:
        raise SystemExit("--scale is a fraction of the course: more than 0, at most 1")
    report = {"machine": bench._machine(), **run(args.root.resolve(), args.scale)}
    print()
    print(table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.out}")
    if args.page:
        bench._replace_block(args.page, COURSE_START, COURSE_END, table(report), report["machine"])
        print(f"results in {args.page}")


if __name__ == "__main__":
    main()
