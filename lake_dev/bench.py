"""`make bench`: lake_assets against the zoomcamp's pandas flow, on one large yellow month.

Every case runs as its own process, interleaved round by round, each after a pause that lets the
machine settle; the parent samples the resident memory and CPU time of the whole process tree.
Medians over rounds are reported, and each lake_assets/baseline ratio is taken within one round
and then its median, so a noisy neighbour affects both sides of a ratio alike.

    python -m lake_dev.bench --rows 7500000 --rounds 3
    python -m lake_dev.bench --quick            # 1M rows, 1 round: about a minute
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

from lake_assets import identity
from lake_dev import overhead, scale

MONTH = date(2021, 1, 1)
MONTH_KEY = "2021-01"
CASES = ("baseline", "lake_assets", "dagster_cli", "polars_duckdb", "polars_duckdb_typed")
# The tool pairs lake_assets is held against: the issue's reference, and the same pair doing the
# contract's typing.
PAIRS = ("polars_duckdb", "polars_duckdb_typed")
DESCRIPTIONS = {
    "baseline": "zoomcamp flow: pandas read_csv of the month, to_datetime, "
    "to_parquet(gzip), DataFrame into DuckDB",
    "lake_assets": "the lake and warehouse steps' own functions and resources (lake_assets.steps), "
    "raw already landed",
    "dagster_cli": "the same through `dagster asset materialize` (multiprocess executor)",
    "polars_duckdb": "reference pair: polars scan_csv -> sink_parquet, DuckDB INSERT FROM "
    "read_parquet",
    "polars_duckdb_typed": "the reference pair with the contract's types: timestamps parsed, "
    "ids as integers, amounts as doubles",
}
RAW_REL = identity.raw_trip_path("yellow", MONTH, ".csv.gz")
# How the cost of a backfill grows with its months: the lake and warehouse steps of N months as
# N single-month runs (how a backfill that includes the downloads runs) or as one run over the
# range (how a rebuild of the derived layers runs), both through the Dagster CLI.
BACKFILL_CASES = ("backfill_runs_per_month", "backfill_one_run", "backfill_deployment")
BACKFILL_DESCRIPTIONS = {
    "backfill_runs_per_month": "one `dagster asset materialize --partition M` per month, in turn",
    "backfill_one_run": "one `dagster asset materialize --partition-range FIRST...LAST`",
    "backfill_deployment": (
        "the same range as a backfill through the webserver's GraphQL API of `make deploy-local`'s "
        "stack, queued and launched by its daemon; memory of the whole stack (PostgreSQL, code "
        "server, webserver, daemon, runs)"
    ),
}
# What the month costs at the least, whoever does the work: each case times one operation and
# discards its result. The lake step cannot take less than the parse; the issue's targets are set
# against these.
FLOOR_CASES = ("floor_inflate_zlib", "floor_inflate_isal", "floor_duckdb_parse")
FLOOR_DESCRIPTIONS = {
    "floor_inflate_zlib": "gzip inflate of the month with zlib (Python's gzip), bytes discarded",
    "floor_inflate_isal": "the same with ISA-L (python-isal)",
    "floor_duckdb_parse": "DuckDB reading the gzip month to the contract's types, exactly as the "
    "lake step does, with nothing written",
}
TRIP_STEPS = "lake/yellow_tripdata,warehouse/yellow_tripdata"


# --- the cases, each run in a child process: `python -m lake_dev.bench --case NAME` ---


class Stages:
    """Seconds per stage inside a case's process, for the profile; the rest of its wall time is
    the interpreter starting and exiting."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now


# The columns the zoomcamp flows parse as timestamps, per service.
BASELINE_TIMESTAMPS = {
    "yellow": ("tpep_pickup_datetime", "tpep_dropoff_datetime"),
    "green": ("lpep_pickup_datetime", "lpep_dropoff_datetime"),
    "fhv": ("pickup_datetime", "dropOff_datetime"),
}


def case_baseline(src: Path, work: Path) -> dict:
    """The zoomcamp week-2 flow, as its notebooks and flows write it (the service is read from
    the file's name, <service>_tripdata_YYYY-MM.csv.gz)."""
    stages = Stages()
    import duckdb
    import pandas as pd

    stages.lap("import")
    service = src.name.split("_tripdata_")[0]
    df = pd.read_csv(src)
    for column in BASELINE_TIMESTAMPS[service]:
        df[column] = pd.to_datetime(df[column])
    stages.lap("read_csv")
    parquet = work / f"{service}_tripdata.parquet"
    df.to_parquet(parquet, compression="gzip")
    stages.lap("to_parquet")
    con = duckdb.connect(str(work / "warehouse.duckdb"))
    con.register("df", df)
    con.execute(f"CREATE TABLE {service}_tripdata AS SELECT * FROM df")
    rows = con.execute(f"SELECT count(*) FROM {service}_tripdata").fetchone()[0]
    con.close()
    stages.lap("load")
    return {"rows": rows, "parquet_bytes": parquet.stat().st_size, "stages": stages.seconds}


def _land_raw(src: Path, lake: Path, rel: str = RAW_REL) -> None:
    """'Download excluded': the month is in the lake before the clock starts."""
    dest = lake / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def case_lake_assets(src: Path, work: Path) -> dict:
    """The functions and resources the lake and warehouse assets call, without Dagster's run."""
    stages = Stages()
    from lake_assets import quality, steps
    from lake_assets.resources import IngestPolicy
    from lake_assets.resources.build import build_backend
    from lake_assets.schemas import YELLOW
    from lake_assets.settings import Settings

    settings = Settings(
        tlc_source_url=_source_url(src),
        lake_dir=str(work / "lake"),
        duckdb_path=str(work / "warehouse.duckdb"),
    )
    lake, warehouse = build_backend(settings, resolved=True)
    stages.lap("import")
    built = steps.build_lake_file(
        lake,
        IngestPolicy(bad_rows=settings.bad_rows),
        YELLOW,
        [RAW_REL],
        identity.lake_trip_path("yellow", MONTH),
        identity.rejects_path("yellow", MONTH),
        MONTH,
        "yellow",
        steps.RunIds("bench", "bench"),
    )
    stages.lap("lake")
    loaded = steps.load_warehouse_month(lake, warehouse, YELLOW, "yellow", MONTH)
    stages.lap("warehouse")
    blocking = [o for o in [*built.outcomes, *loaded.outcomes] if o.severity == quality.ERROR]
    figures = _lake_assets_figures(work, all(o.passed for o in blocking))
    return {**figures, "stages": stages.seconds}


def _lake_assets_figures(work: Path, success: bool) -> dict:
    import duckdb

    if not success:
        raise SystemExit("the lake_assets run failed")
    parquet = work / "lake" / identity.lake_trip_path("yellow", MONTH)
    con = duckdb.connect(str(work / "warehouse.duckdb"), read_only=True)
    rows = con.execute("SELECT count(*) FROM nyc_taxi.yellow_tripdata").fetchone()[0]
    con.close()
    return {"rows": rows, "parquet_bytes": parquet.stat().st_size}


def _duckdb_insert(parquet: Path, work: Path, stages: Stages) -> dict:
    """The reference pairs' second tool: the Parquet file into a DuckDB table."""
    import duckdb

    con = duckdb.connect(str(work / "warehouse.duckdb"))
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"CREATE TABLE yellow_tripdata AS FROM read_parquet('{parquet}') LIMIT 0")
    con.execute(f"INSERT INTO yellow_tripdata SELECT * FROM read_parquet('{parquet}')")
    rows = con.execute("SELECT count(*) FROM yellow_tripdata").fetchone()[0]
    con.close()
    stages.lap("load")
    return {"rows": rows, "parquet_bytes": parquet.stat().st_size, "stages": stages.seconds}


def case_polars_duckdb(src: Path, work: Path) -> dict:
    stages = Stages()
    import duckdb  # noqa: F401 - imported here so that the load stage times the load alone
    import polars as pl

    stages.lap("import")
    parquet = work / "yellow_tripdata.parquet"
    pl.scan_csv(src).sink_parquet(parquet, compression="zstd")
    stages.lap("convert")
    return _duckdb_insert(parquet, work, stages)


def case_polars_duckdb_typed(src: Path, work: Path) -> dict:
    """polars left to itself reads the timestamps as text; this pair types them as we do."""
    stages = Stages()
    import duckdb  # noqa: F401 - imported here so that the load stage times the load alone
    import polars as pl

    from lake_assets.convert import map_header, read_header
    from lake_assets.schemas import YELLOW

    stages.lap("import")

    dtypes = {
        "int64": pl.Int64,
        "float64": pl.Float64,
        "string": pl.String,
        "timestamp": pl.Datetime("us"),
    }
    header = read_header(src, str(src))
    overrides = {s: dtypes[YELLOW.column(t).type] for s, t in map_header(header, YELLOW, str(src))}
    parquet = work / "yellow_tripdata.parquet"
    pl.scan_csv(src, schema_overrides=overrides).sink_parquet(parquet, compression="zstd")
    stages.lap("convert")
    return _duckdb_insert(parquet, work, stages)


def _inflate_floor(open_gzip, src: Path, stages: Stages) -> dict:
    newlines = 0
    with open_gzip(src, "rb") as f:
        while block := f.read(1 << 20):
            newlines += block.count(b"\n")
    stages.lap("inflate")
    return {"rows": newlines - 1, "parquet_bytes": 0, "stages": stages.seconds}


def case_floor_inflate_zlib(src: Path, work: Path) -> dict:
    stages = Stages()
    import gzip

    stages.lap("import")
    return _inflate_floor(gzip.open, src, stages)


def case_floor_inflate_isal(src: Path, work: Path) -> dict:
    stages = Stages()
    from isal import igzip

    stages.lap("import")
    return _inflate_floor(igzip.open, src, stages)


def case_floor_duckdb_parse(src: Path, work: Path) -> dict:
    stages = Stages()
    import duckdb

    from lake_assets import convert
    from lake_assets.schemas import YELLOW

    stages.lap("import")
    select = convert.select_sql(src, YELLOW, MONTH)
    # An aggregate of every column, so that each is parsed and checked, and nothing is kept.
    every = ", ".join(f'max("{c}")' for c in YELLOW.column_names)
    con = duckdb.connect(config={"memory_limit": convert.DEFAULT_MEMORY_LIMIT})
    (rows, *_) = con.execute(f"SELECT count(*), {every} FROM ({select})").fetchone()
    con.close()
    stages.lap("parse")
    return {"rows": rows, "parquet_bytes": 0, "stages": stages.seconds}


CASE_FUNCTIONS = {
    "baseline": case_baseline,
    "lake_assets": case_lake_assets,
    "polars_duckdb": case_polars_duckdb,
    "polars_duckdb_typed": case_polars_duckdb_typed,
    "floor_inflate_zlib": case_floor_inflate_zlib,
    "floor_inflate_isal": case_floor_inflate_isal,
    "floor_duckdb_parse": case_floor_duckdb_parse,
}


def _child(case: str, src: Path, work: Path) -> None:
    figures = CASE_FUNCTIONS[case](src, work)
    print("BENCH_RESULT " + json.dumps(figures), flush=True)


# --- the parent: processes, measurements, report ---


class TreeSampler:
    """Peak resident memory and CPU time of a process and all its descendants, sampled every
    20 ms.

    CPU time is each process's own user + system time at its last sample, summed over every
    process seen: rusage would miss the steps of a multiprocess run, whose parent is the
    forkserver and not the run. A process's last 20 ms, or one that lives less, go uncounted.
    """

    def __init__(self, *pids: int) -> None:
        import psutil

        self.roots = [psutil.Process(pid) for pid in pids]
        self.peak = 0
        self._cpu: dict[tuple[int, float], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def cpu(self) -> float:
        return sum(self._cpu.values())

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            procs = []
            for root in self.roots:
                try:
                    procs += [root, *root.children(recursive=True)]
                except psutil.Error:
                    pass
            for p in procs:
                try:
                    with p.oneshot():
                        total += p.memory_info().rss
                        times = p.cpu_times()
                        self._cpu[(p.pid, p.create_time())] = times.user + times.system
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.02)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _source_url(src: Path) -> str:
    return src.parent.parent.as_uri() + "/{service}/{service}_tripdata_{year}-{month}.csv.gz"


# lake_dev is not installed: its case processes find it from the repository root.
REPO = Path(__file__).resolve().parent.parent


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TLC_", "LAKE_", "DUCKDB_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _lake_settings(src: Path, work: Path, **extra: str) -> dict[str, str]:
    """The lake's settings for a run on work's lake and DuckDB file, reading src's folder."""
    return {
        "TLC_SOURCE_URL": _source_url(src),
        "LAKE_DIR": str(work / "lake"),
        "DUCKDB_PATH": str(work / "warehouse.duckdb"),
        **extra,
    }


def _cli_env(src: Path, work: Path, **extra: str) -> dict[str, str]:
    """The settings of a `dagster asset materialize` on work's lake, DuckDB file and instance."""
    return {
        **_clean_env(),
        "DAGSTER_HOME": str(work / "dagster_home"),
        **_lake_settings(src, work, **extra),
    }


def deployment(work: Path, env: dict[str, str]):
    """make deploy-local's stack under work, on free ports, with the lake's settings env."""
    from lake_dev.deploy_local import Deployment, free_port

    return Deployment(
        work / "deploy", env, pg_port=free_port(), grpc_port=free_port(), ui_port=free_port()
    )


def _materialize_cmd(*partition: str) -> list[str]:
    """`dagster asset materialize` of the lake and warehouse steps, then --partition(-range)."""
    cmd = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize"]
    return [*cmd, "-m", "lake_assets.definitions", "--select", TRIP_STEPS, *partition]


def _command(case: str, src: Path, work: Path) -> tuple[list[str], dict[str, str]]:
    if case != "dagster_cli":
        cmd = [sys.executable, "-m", "lake_dev.bench", "--case", case]
        return cmd + ["--src", str(src), "--work", str(work)], {**_clean_env(), "DAGSTER_HOME": ""}
    return _materialize_cmd("--partition", MONTH_KEY), _cli_env(src, work)


def _fresh_instance(home: Path) -> None:
    """Set up before the clock starts: that is installation, not ingestion."""
    import dagster as dg

    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dg.DagsterInstance.from_config(str(home)).dispose()


def _timed(commands: list[list[str]], env: dict[str, str], case: str) -> tuple[dict, list[str]]:
    """Run the commands one after another; wall and CPU time in all, the largest tree's RSS."""
    started = time.monotonic()
    peak, cpu, outputs = 0, 0.0, []
    for cmd in commands:
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        with TreeSampler(proc.pid) as sampler:
            out, _ = proc.communicate()
        peak, cpu = max(peak, sampler.peak), cpu + sampler.cpu
        if proc.returncode != 0:
            raise SystemExit(f"{case} failed:\n{out[-4000:]}")
        outputs.append(out)
    wall = time.monotonic() - started
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "peak_rss_mb": round(peak / 2**20, 1),
    }, outputs


def measure(case: str, src: Path, scratch: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"{case}_", dir=scratch))
    if case in ("lake_assets", "dagster_cli"):
        _land_raw(src, work / "lake")
    if case == "dagster_cli":
        _fresh_instance(work / "dagster_home")
    cmd, env = _command(case, src, work)
    timing, (out,) = _timed([cmd], env, case)
    if case == "dagster_cli":
        figures = _lake_assets_figures(work, "RUN_SUCCESS" in out)
    else:
        line = [x for x in out.splitlines() if x.startswith("BENCH_RESULT ")][-1]
        figures = json.loads(line.split(" ", 1)[1])
    shutil.rmtree(work, ignore_errors=True)
    return {
        **timing,
        "rows": figures["rows"],
        "rows_per_s": round(figures["rows"] / timing["wall_s"]),
        "parquet_bytes": figures["parquet_bytes"],
        **({"stages": figures["stages"]} if "stages" in figures else {}),
    }


def _months(count: int) -> list[date]:
    """count consecutive months from MONTH."""
    return [
        date(MONTH.year + (MONTH.month - 1 + i) // 12, (MONTH.month - 1 + i) % 12 + 1, 1)
        for i in range(count)
    ]


def measure_backfill(case: str, months: list[Path], scratch: Path) -> dict:
    """The lake and warehouse steps of every month, raw files already landed."""

    work = Path(tempfile.mkdtemp(prefix=f"{case}_", dir=scratch))
    dates = _months(len(months))
    keys = [f"{m:%Y-%m}" for m in dates]
    for month, src in zip(dates, months, strict=True):
        _land_raw(src, work / "lake", identity.raw_trip_path("yellow", month, ".csv.gz"))
    if case == "backfill_deployment":
        return _backfill_through_deployment(months, keys, work)
    _fresh_instance(work / "dagster_home")
    # The partitions must reach the last month (the mirror's default ends at 2021-07).
    env = _cli_env(months[0], work, TLC_START_MONTH=keys[0], TLC_END_MONTH=keys[-1])
    if case == "backfill_one_run":
        commands = [_materialize_cmd("--partition-range", f"{keys[0]}...{keys[-1]}")]
    else:
        commands = [_materialize_cmd("--partition", key) for key in keys]
    timing, outputs = _timed(commands, env, case)
    if not all("RUN_SUCCESS" in out for out in outputs):
        raise SystemExit(f"{case}: a run did not succeed")
    rows, parquet = _built(work)
    return {
        **timing,
        "runs": len(commands),
        "rows": rows,
        "rows_per_s": round(rows / timing["wall_s"]),
        "parquet_bytes": parquet,
    }


def _built(work: Path) -> tuple[int, int]:
    """Rows in work's warehouse and bytes of its lake Parquet; then work is removed."""
    import duckdb

    con = duckdb.connect(str(work / "warehouse.duckdb"), read_only=True)
    rows = con.execute("SELECT count(*) FROM nyc_taxi.yellow_tripdata").fetchone()[0]
    con.close()
    parquet = sum(p.stat().st_size for p in (work / "lake" / "lake").rglob("*.parquet"))
    shutil.rmtree(work, ignore_errors=True)
    return rows, parquet


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    import urllib.request

    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as resp:
        return json.loads(resp.read())["data"]


def _backfill_through_deployment(months: list[Path], keys: list[str], work: Path) -> dict:
    """Start make deploy-local's stack (untimed), then time a backfill of the lake and warehouse
    steps launched through its webserver and run by its daemon, sampling the whole stack."""
    env = _lake_settings(months[0], work, TLC_START_MONTH=keys[0], TLC_END_MONTH=keys[-1])
    stack = deployment(work, env)
    try:
        stack.start()
        postmaster = int((stack.pgdata / "postmaster.pid").read_text().split()[0])
        pids = [postmaster, *(p.pid for p in stack.procs.values())]
        selection = [
            {"path": ["lake", "yellow_tripdata"]},
            {"path": ["warehouse", "yellow_tripdata"]},
        ]
        started = time.monotonic()
        with TreeSampler(*pids) as sampler:
            launched = _graphql(
                stack.url,
                "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p)"
                " { __typename ... on LaunchBackfillSuccess { backfillId } } }",
                {"p": {"partitionNames": keys, "assetSelection": selection}},
            )["launchPartitionBackfill"]
            if launched["__typename"] != "LaunchBackfillSuccess":
                raise SystemExit(f"backfill_deployment: the backfill was not launched: {launched}")
            backfill = launched["backfillId"]
            status_query = (
                "query($id: String!, $f: RunsFilter) { partitionBackfillOrError(backfillId: $id) "
                "{ ... on PartitionBackfill { status } } runsOrError(filter: $f) "
                "{ ... on Runs { results { status } } } }"
            )
            tags = {"f": {"tags": [{"key": "dagster/backfill", "value": backfill}]}, "id": backfill}
            while True:
                data = _graphql(stack.url, status_query, tags)
                runs = [r["status"] for r in data["runsOrError"]["results"]]
                status = data["partitionBackfillOrError"]["status"]
                done = runs and all(r in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)
                if status != "REQUESTED" and done:
                    break
                if time.monotonic() - started > 3600:
                    raise SystemExit("backfill_deployment: the backfill did not finish in an hour")
                time.sleep(0.2)
        wall = time.monotonic() - started
        if any(r != "SUCCESS" for r in runs):
            raise SystemExit(f"backfill_deployment: runs ended {runs}; see {stack.root}")
    finally:
        stack.stop()
    rows, parquet = _built(work)
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(sampler.cpu, 3),
        "peak_rss_mb": round(sampler.peak / 2**20, 1),
        "runs": len(runs),
        "rows": rows,
        "rows_per_s": round(rows / wall),
        "parquet_bytes": parquet,
    }


def generator_tag() -> str:
    """Generated data is cached under this: a file made by an older generator is not reused."""
    from lake_dev import generator

    return hashlib.sha256(Path(generator.__file__).read_bytes()).hexdigest()[:12]


def month_files(root: Path, rows: int, count: int) -> list[Path]:
    """count consecutive months from MONTH, rows each, generated once and kept under root."""
    from lake_dev import generator

    tag = generator_tag()
    paths = []
    for month in _months(count):
        name = generator.month_file_name("yellow", month)
        path = root / f"gen-{tag}" / f"rows_{rows}" / "yellow" / name
        if not path.exists():
            print(f"generating {rows:,} rows of yellow {month:%Y-%m} into {path}", flush=True)
            generator.write_month("yellow", month, rows, path)
        paths.append(path)
    return paths


def month_file(root: Path, rows: int) -> Path:
    """The benchmark month (MONTH), generated once per row count and kept under root."""
    return month_files(root, rows, 1)[0]


# Every case starts on a machine at rest: here a case run straight after the baseline, which has
# just freed 5 GB, measured 0.7 s slower than after a 10 s pause.
SETTLE_SECONDS = 5.0
# Every case's libraries, the Dagster CLI's included.
WARM_IMPORTS = (
    "import duckdb, pandas, polars, pyarrow.parquet, isal.igzip, dagster._cli, "
    "lake_assets.definitions"
)


def _warm(files: list[Path]) -> None:
    """Untimed, before each case: read its input and import every case's libraries, so that no
    case pays for reading them from disk. This VM's page cache sheds files between cases (one
    round's imports took 0.9 s, another's 4.3 s, for the same code), which is not the code's
    doing."""
    subprocess.run(
        [sys.executable, "-W", "ignore", "-c", WARM_IMPORTS],
        check=True,
        env={**_clean_env(), "DAGSTER_HOME": ""},
        stdout=subprocess.DEVNULL,
    )
    for path in files:
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass


def run(
    rows: int,
    rounds: int,
    cases: tuple[str, ...],
    root: Path,
    backfill_rows: int = 0,
    backfill_months: int = 0,
    settle: float = SETTLE_SECONDS,
    floors: bool = True,
    warm_every_case: bool = True,
) -> dict:
    src = month_file(root / "data", rows)
    backfill = month_files(root / "data", backfill_rows, backfill_months) if backfill_months else []
    scratch = root / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    samples: dict[str, list[dict]] = {c: [] for c in cases}
    for r in range(rounds):
        for i, case in enumerate((*cases, *(FLOOR_CASES if floors else ()))):
            time.sleep(settle)
            if warm_every_case or i == 0:
                _warm([src])
            m = measure(case, src, scratch)
            samples.setdefault(case, []).append(m)
            print(
                f"round {r + 1}/{rounds} {case:<20} {m['wall_s']:>7.2f} s wall "
                f"{m['cpu_s']:>7.2f} s cpu {m['peak_rss_mb']:>8.1f} MB",
                flush=True,
            )
        for case in BACKFILL_CASES if backfill else ():
            time.sleep(settle)
            if warm_every_case:
                _warm(backfill)
            m = measure_backfill(case, backfill, scratch)
            samples.setdefault(case, []).append(m)
            print(
                f"round {r + 1}/{rounds} {case:<24} {m['wall_s']:>7.2f} s wall "
                f"{m['cpu_s']:>7.2f} s cpu {m['peak_rss_mb']:>8.1f} MB ({m['runs']} runs)",
                flush=True,
            )
    medians = {case: _medians(runs) for case, runs in samples.items()}
    ratios = {}
    if "baseline" in samples:
        for case in cases:
            if case == "baseline":
                continue
            pairs = zip(samples["baseline"], samples[case], strict=True)
            per_round = [
                (b["wall_s"] / c["wall_s"], c["peak_rss_mb"] / b["peak_rss_mb"]) for b, c in pairs
            ]
            ratios[case] = {
                "speedup_vs_baseline": round(statistics.median(p[0] for p in per_round), 2),
                "rss_vs_baseline": round(statistics.median(p[1] for p in per_round), 3),
            }
    for pair in PAIRS:
        if "lake_assets" in samples and pair in samples:
            walls = zip(samples["lake_assets"], samples[pair], strict=True)
            ratios.setdefault("lake_assets", {})[f"wall_vs_{pair}"] = round(
                statistics.median(a["wall_s"] / b["wall_s"] for a, b in walls), 2
            )
    if backfill:
        pairs = zip(samples["backfill_runs_per_month"], samples["backfill_one_run"], strict=True)
        ratios["backfill_one_run"] = {
            "speedup_vs_runs_per_month": round(
                statistics.median(a["wall_s"] / b["wall_s"] for a, b in pairs), 2
            )
        }
        pairs = zip(samples["backfill_deployment"], samples["backfill_one_run"], strict=True)
        ratios["backfill_deployment"] = {
            "wall_vs_one_run": round(
                statistics.median(a["wall_s"] / b["wall_s"] for a, b in pairs), 2
            )
        }
    descriptions = {**DESCRIPTIONS, **BACKFILL_DESCRIPTIONS, **FLOOR_DESCRIPTIONS}
    return {
        "month": MONTH_KEY,
        "rows": rows,
        "source_bytes": src.stat().st_size,
        "rounds": rounds,
        "settle_s": settle,
        "machine": _machine(),
        "backfill": {"months": backfill_months, "rows_per_month": backfill_rows}
        if backfill
        else None,
        "cases": {
            c: {"description": descriptions[c], "median": medians[c], "runs": samples[c]}
            for c in samples
        },
        "ratios": ratios,
    }


def _medians(runs: list[dict]) -> dict:
    medians = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "stages"}
    if "stages" in runs[0]:
        medians["stages"] = {
            k: statistics.median(r["stages"][k] for r in runs) for k in runs[0]["stages"]
        }
    return medians


def table(report: dict) -> str:
    lines = [
        f"{report['rows']:,} rows of yellow {report['month']} "
        f"({report['source_bytes'] / 2**20:,.0f} MiB gz), medians of {report['rounds']} rounds, "
        f"{report['machine']['cpus']} CPUs / {report['machine']['memory_gb']} GB",
        "",
        "| case | wall s | CPU s | peak RSS MB | rows/s | Parquet MB | speed-up vs baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    backfills = {c: d for c, d in report["cases"].items() if c in BACKFILL_CASES}
    floors = {c: d for c, d in report["cases"].items() if c in FLOOR_CASES}
    for case, data in report["cases"].items():
        if case in backfills or case in floors:
            continue
        m = data["median"]
        speedup = report["ratios"].get(case, {}).get("speedup_vs_baseline")
        if case == "baseline":
            versus = "1.00 (reference)"
        else:
            versus = f"{speedup:.2f}x" if speedup else ""
        lines.append(
            f"| {case} | {m['wall_s']:.2f} | {m['cpu_s']:.2f} | {m['peak_rss_mb']:.0f} | "
            f"{m['rows_per_s']:,.0f} | {m['parquet_bytes'] / 2**20:.1f} | {versus} |"
        )
    versus_pairs = {
        pair: ratio
        for pair in PAIRS
        if (ratio := report["ratios"].get("lake_assets", {}).get(f"wall_vs_{pair}"))
    }
    if versus_pairs:
        lines += [
            "",
            "lake_assets wall time / the pair's, round by round (at most 1.00: no slower): "
            + ", ".join(f"{pair} {ratio:.2f}" for pair, ratio in versus_pairs.items()),
        ]
    profiled = {
        case: data["median"]["stages"]
        for case, data in report["cases"].items()
        if case not in floors and "stages" in data["median"]
    }
    if profiled:
        lines += ["", "Seconds by stage, inside each case's process (medians):", ""]
        lines += [
            f"- {case}: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
            for case, stages in profiled.items()
        ]
    if floors:
        lines += [
            "",
            "Floors: one operation on the same month, its own seconds (medians)",
            "",
            "| floor | seconds | what |",
            "|---|---:|---|",
        ]
        for case, data in floors.items():
            (seconds,) = [v for k, v in data["median"]["stages"].items() if k != "import"]
            lines.append(f"| {case} | {seconds:.2f} | {data['description']} |")
    if backfills:
        b = report["backfill"]
        speedup = report["ratios"]["backfill_one_run"]["speedup_vs_runs_per_month"]
        lines += [
            "",
            f"Backfill of the lake and warehouse steps: {b['months']} months x "
            f"{b['rows_per_month']:,} rows, through the Dagster CLI",
            "",
            "| case | runs | wall s | CPU s | peak RSS MB | rows/s | speed-up |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for case, data in backfills.items():
            m = data["median"]
            versus = {
                "backfill_one_run": f"{speedup:.2f}x",
                "backfill_deployment": (
                    f"{report['ratios']['backfill_deployment']['wall_vs_one_run']:.2f}x "
                    "the one run's time"
                ),
            }.get(case, "1.00 (reference)")
            lines.append(
                f"| {case} | {m['runs']:.0f} | {m['wall_s']:.2f} | {m['cpu_s']:.2f} | "
                f"{m['peak_rss_mb']:.0f} | {m['rows_per_s']:,.0f} | {versus} |"
            )
    return "\n".join(lines)


PAGE_START, PAGE_END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


OVERHEAD_START, OVERHEAD_END = "<!-- bench:overhead:start -->", "<!-- bench:overhead:end -->"
SCALE_START, SCALE_END = "<!-- bench:scale:start -->", "<!-- bench:scale:end -->"


def _machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _replace_block(page: Path, start: str, end: str, body: str, m: dict) -> None:
    """The block between start and end, headed by the date and the machine m it ran on."""
    text = page.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{page} has no {start} ... {end} block to rewrite")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    when = time.strftime("%Y-%m-%d", time.gmtime())
    block = (
        f"Latest run ({when}; {m['cpus']} CPUs, {m['memory_gb']} GB, Python {m['python']}):\n\n"
        f"{body}\n"
    )
    page.write_text(f"{head}{start}\n{block}{end}{tail}")


def write_page(page: Path, report: dict) -> None:
    """Replace the results blocks of page (docs/benchmark.md) with this run's tables; the hand-
    written method and reading around them stay as they are."""
    m = report["machine"]
    if report.get("cases"):
        _replace_block(page, PAGE_START, PAGE_END, table(report), m)
    if report.get("overhead"):
        _replace_block(page, OVERHEAD_START, OVERHEAD_END, overhead.table(report["overhead"]), m)
    if report.get("scale"):
        _replace_block(page, SCALE_START, SCALE_END, scale.table(report["scale"]), m)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", type=int, default=7_500_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--quick",
        action="store_true",
        help="1M rows, 1 round, 2-month backfill, 1 s pauses, the warm-up once per round",
    )
    p.add_argument("--settle", type=float, default=SETTLE_SECONDS, help="pause before each case")
    p.add_argument("--backfill-months", type=int, default=12, help="0 skips the backfill cases")
    p.add_argument(
        "--floors",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the floors: inflate (zlib, ISA-L) and DuckDB's typed parse",
    )
    p.add_argument("--backfill-rows", type=int, default=1_000_000, help="rows per backfill month")
    p.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    p.add_argument(
        "--overhead-rounds",
        type=int,
        help="rounds of the run-overhead cases (lake_dev/overhead.py); default --rounds, 0 skips",
    )
    p.add_argument(
        "--scale-rows",
        type=int,
        nargs="*",
        help=f"month sizes of the scale curve (lake_dev/scale.py); default {scale.SIZES}, "
        "none with --quick or --overhead-only; an empty list skips it",
    )
    p.add_argument(
        "--overhead-only",
        action="store_true",
        help="only the run-overhead cases (3 rounds unless --overhead-rounds)",
    )
    p.add_argument("--root", type=Path, default=Path("build/bench"), help="cache and scratch")
    p.add_argument("--out", type=Path, default=Path("build/bench.json"))
    p.add_argument("--page", type=Path, help="a Markdown page whose results block to rewrite")
    p.add_argument("--case", choices=tuple(CASE_FUNCTIONS), help=argparse.SUPPRESS)
    p.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        _child(args.case, args.src, args.work)
        return
    rows, rounds = (1_000_000, 1) if args.quick else (args.rows, args.rounds)
    months, month_rows = (2, 100_000) if args.quick else (args.backfill_months, args.backfill_rows)
    settle = min(args.settle, 1.0) if args.quick else args.settle
    report: dict = {"machine": _machine()}
    if not args.overhead_only:
        report = run(
            rows,
            rounds,
            tuple(args.cases),
            args.root.resolve(),
            month_rows,
            months,
            settle,
            args.floors,
            warm_every_case=not args.quick,
        )
        print()
        print(table(report))
    overhead_rounds = args.overhead_rounds
    if overhead_rounds is None:
        overhead_rounds = 3 if args.overhead_only else rounds
    if overhead_rounds:
        env = {**_clean_env(), "DAGSTER_HOME": ""}
        report["overhead"] = overhead.run_overhead(args.root.resolve(), overhead_rounds, env)
        print()
        print(overhead.table(report["overhead"]))
    sizes = args.scale_rows
    if sizes is None:
        sizes = () if args.quick or args.overhead_only else scale.SIZES
    if sizes:
        report["scale"] = scale.run_scale(args.root.resolve(), tuple(sizes))
        print()
        print(scale.table(report["scale"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.out}")
    if args.page:
        write_page(args.page, report)
        print(f"results in {args.page}")


if __name__ == "__main__":
    main()
