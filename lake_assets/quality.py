"""Data quality checks as plain functions: each returns an Outcome that the assets report.

No Dagster import. Blocking checks (severity ERROR) guard the contract: the schema, a non-empty
month, row parity between layers. Warnings (WARN) carry figures a user watches across months.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date

import duckdb
import pyarrow as pa
from isal import igzip

from lake_assets.convert import BadInputError, detect_format, is_gzip
from lake_assets.schemas import TableContract, arrow_schema

ERROR, WARN = "ERROR", "WARN"

SCHEMA_MATCHES_CONTRACT = "schema_matches_contract"
NOT_EMPTY = "month_not_empty"
ROWS_ACCOUNTED_FOR = "rows_accounted_for"
PICKUPS_IN_MONTH = "pickups_in_month"
DROPOFF_AFTER_PICKUP = "dropoff_after_pickup"
NEGATIVE_TOTALS = "negative_totals"
LOCATION_IDS_PRESENT = "location_ids_present"
PASSENGER_COUNT_PRESENT = "passenger_count_present"
SLICE_MATCHES_LAKE = "slice_matches_lake"
UNIQUE_LOCATION_IDS = "unique_location_ids"
BOROUGH_PRESENT = "borough_present"
EVERY_TRIP_COUNTED_ONCE = "every_trip_counted_once"

# Warning thresholds: shares above these are unusual for the service. fhv trips often carry no
# pickup zone at all, so its location threshold is loose; the figure is still reported.
MIN_PICKUPS_IN_MONTH = 0.99
MAX_DROPOFF_BEFORE_PICKUP = 0.001
MAX_NEGATIVE_TOTAL_SHARE = 0.01
MAX_LOCATION_NULL_RATE = {"yellow": 0.01, "green": 0.01, "fhv": 0.95}
MAX_PASSENGER_NULL_RATE = 0.05
ZONE_COUNT = 265


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    severity: str
    description: str
    metadata: dict = field(default_factory=dict)


# --- lake: blocking ---


def schema_outcome(actual: pa.Schema, contract: TableContract) -> Outcome:
    expected = arrow_schema(contract)
    actual = actual.remove_metadata()
    if actual.equals(expected):
        return Outcome(
            SCHEMA_MATCHES_CONTRACT, True, ERROR, f"{len(expected)} columns as contracted"
        )
    want = {f.name: f for f in expected}
    have = {f.name: f for f in actual}
    problems = [f"missing {n}" for n in want if n not in have]
    problems += [f"unexpected {n}" for n in have if n not in want]
    problems += [
        f"{n}: {have[n].type}{'' if have[n].nullable else ' not null'} instead of "
        f"{want[n].type}{'' if want[n].nullable else ' not null'}"
        for n in want
        if n in have and not have[n].equals(want[n])
    ]
    if not problems and [f.name for f in actual] != [f.name for f in expected]:
        problems.append("columns out of order")
    return Outcome(
        SCHEMA_MATCHES_CONTRACT,
        False,
        ERROR,
        f"Parquet schema differs from the {contract.name} contract: {'; '.join(problems)}",
        {"differences": "; ".join(problems)},
    )


def not_empty_outcome(rows: int) -> Outcome:
    if rows > 0:
        return Outcome(NOT_EMPTY, True, ERROR, f"{rows} rows", {"rows": rows})
    return Outcome(NOT_EMPTY, False, ERROR, "the month has no rows", {"rows": 0})


def parity_outcome(rows_in_source: int, rows_written: int, rows_rejected: int) -> Outcome:
    meta = {
        "rows_in_source": rows_in_source,
        "rows_written": rows_written,
        "rows_rejected": rows_rejected,
    }
    if rows_in_source == rows_written + rows_rejected:
        return Outcome(
            ROWS_ACCOUNTED_FOR,
            True,
            ERROR,
            f"{rows_in_source} source rows = {rows_written} written + {rows_rejected} rejected",
            meta,
        )
    return Outcome(
        ROWS_ACCOUNTED_FOR,
        False,
        ERROR,
        f"{rows_in_source} source rows but {rows_written} written + {rows_rejected} rejected: "
        f"{rows_in_source - rows_written - rows_rejected} unaccounted for",
        meta,
    )


COUNT_CHUNK = 1 << 22


class DataRowCounter:
    """Non-blank lines after the header, counted independently of the CSV parser, from the
    file's bytes fed in order.

    A last line without a newline (a cut file) counts; blank lines (a newline followed by an
    optional carriage return and another newline) do not, as the parser skips them. Newline
    positions come from one vectorized comparison per chunk, so counting costs little more than
    reading (or decompressing) the bytes.
    """

    def __init__(self) -> None:
        self.newlines = self.blank = self.offset = 0
        self.last_nl: int | None = None  # absolute position of the last newline seen
        self.last_byte = b""  # the last byte fed so far

    def feed(self, chunk: bytes) -> None:
        import numpy as np

        if not chunk:
            return
        arr = np.frombuffer(chunk, dtype=np.uint8)
        nl = np.flatnonzero(arr == 10)
        if nl.size:
            gaps = np.diff(nl)
            self.blank += int(np.count_nonzero(gaps == 1))
            two = nl[:-1][gaps == 2]
            self.blank += int(np.count_nonzero(arr[two + 1] == 13))
            if self.last_nl is not None:
                # The blank line may straddle the previous chunk and this one.
                first, prev = int(nl[0]), self.last_nl - self.offset
                if first - prev == 1:
                    self.blank += 1
                elif first - prev == 2:
                    between = chunk[first - 1 : first] if first >= 1 else self.last_byte
                    self.blank += between == b"\r"
            self.newlines += int(nl.size)
            self.last_nl = self.offset + int(nl[-1])
        self.offset += len(chunk)
        self.last_byte = chunk[-1:]

    @property
    def rows(self) -> int:
        if not self.offset:
            return 0
        lines = self.newlines + (0 if self.last_byte == b"\n" else 1) - self.blank
        return max(lines - 1, 0)


def count_data_rows(path: str | os.PathLike, name: str | None = None) -> int:
    """DataRowCounter over a plain or gzip CSV file, read in COUNT_CHUNK-byte chunks.

    Raises BadInputError naming the file (name, else path) if the gzip stream is cut or corrupt.
    """
    from isal import isal_zlib

    counter = DataRowCounter()
    with (igzip.open if is_gzip(path) else open)(path, "rb") as f:
        while True:
            try:
                chunk = f.read(COUNT_CHUNK)
            except (EOFError, igzip.BadGzipFile, isal_zlib.error) as e:
                name = name or str(path)
                raise BadInputError(
                    f"{name}: gzip stream is cut or corrupt ({e})", file=name
                ) from e
            if not chunk:
                return counter.rows
            counter.feed(chunk)


def count_source_rows(path: str | os.PathLike, name: str | None = None) -> int:
    """Rows of a landed file: its Parquet footer, or its non-blank CSV data lines."""
    if detect_format(path) == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return count_data_rows(path, name)


# --- lake: warnings, from one aggregate query over the Parquet file ---


def profile_trips(parquet: str | os.PathLike, contract: TableContract, month: date) -> dict:
    """Figures of one month's Parquet: rows, in-month share, bad durations, nulls, negatives."""
    cols = set(contract.column_names)
    month_end = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    exprs = [
        "count(*) AS rows",
        f"count(*) FILTER (pickup_datetime >= DATE '{month}' AND pickup_datetime < "
        f"DATE '{month_end}') AS pickups_in_month",
        "count(*) FILTER (dropoff_datetime < pickup_datetime) AS dropoff_before_pickup",
        "count(*) FILTER (pickup_location_id IS NULL) AS pickup_location_nulls",
        "count(*) FILTER (dropoff_location_id IS NULL) AS dropoff_location_nulls",
        "min(pickup_datetime) AS min_pickup",
        "max(pickup_datetime) AS max_pickup",
    ]
    if "total_amount" in cols:
        exprs.append("count(*) FILTER (total_amount < 0) AS negative_totals")
    if "passenger_count" in cols:
        exprs.append("count(*) FILTER (passenger_count IS NULL) AS passenger_count_nulls")
    con = duckdb.connect()
    try:
        cur = con.execute(f"SELECT {', '.join(exprs)} FROM read_parquet(?)", [str(parquet)])
        names = [d[0] for d in cur.description]
        row = cur.fetchone()
    finally:
        con.close()
    figures = dict(zip(names, row, strict=True))
    n = figures["rows"]

    def rate(count: int) -> float:
        return round(count / n, 6) if n else 0.0

    figures["pickups_in_month_share"] = rate(figures["pickups_in_month"]) if n else 1.0
    figures["dropoff_before_pickup_share"] = rate(figures["dropoff_before_pickup"])
    figures["pickup_location_null_rate"] = rate(figures["pickup_location_nulls"])
    figures["dropoff_location_null_rate"] = rate(figures["dropoff_location_nulls"])
    if "negative_totals" in figures:
        figures["negative_total_share"] = rate(figures["negative_totals"])
    if "passenger_count_nulls" in figures:
        figures["passenger_count_null_rate"] = rate(figures["passenger_count_nulls"])
    for key in ("min_pickup", "max_pickup"):
        figures[key] = str(figures[key]) if figures[key] is not None else ""
    return figures


def _warn(name: str, ok: bool, good: str, bad: str, meta: dict) -> Outcome:
    return Outcome(name, ok, WARN, good if ok else bad, meta)


def warning_outcomes(service: str, p: dict) -> list[Outcome]:
    out = [
        _warn(
            PICKUPS_IN_MONTH,
            p["pickups_in_month_share"] >= MIN_PICKUPS_IN_MONTH,
            f"{p['pickups_in_month_share']:.2%} of pickups fall in the month",
            f"only {p['pickups_in_month_share']:.2%} of pickups fall in the month "
            f"(pickups from {p['min_pickup']} to {p['max_pickup']})",
            {
                "share": p["pickups_in_month_share"],
                "outside_month": p["rows"] - p["pickups_in_month"],
                "min_pickup": p["min_pickup"],
                "max_pickup": p["max_pickup"],
                "threshold": MIN_PICKUPS_IN_MONTH,
            },
        ),
        _warn(
            DROPOFF_AFTER_PICKUP,
            p["dropoff_before_pickup_share"] <= MAX_DROPOFF_BEFORE_PICKUP,
            f"{p['dropoff_before_pickup']} trips end before they start",
            f"{p['dropoff_before_pickup']} trips ({p['dropoff_before_pickup_share']:.2%}) end "
            "before they start",
            {
                "share": p["dropoff_before_pickup_share"],
                "trips": p["dropoff_before_pickup"],
                "threshold": MAX_DROPOFF_BEFORE_PICKUP,
            },
        ),
    ]
    limit = MAX_LOCATION_NULL_RATE[service]
    worst = max(p["pickup_location_null_rate"], p["dropoff_location_null_rate"])
    out.append(
        _warn(
            LOCATION_IDS_PRESENT,
            worst <= limit,
            f"location ids null in {worst:.2%} of trips at most",
            f"location ids null in {worst:.2%} of trips (threshold {limit:.0%})",
            {
                "pickup_null_rate": p["pickup_location_null_rate"],
                "dropoff_null_rate": p["dropoff_location_null_rate"],
                "threshold": limit,
            },
        )
    )
    if "negative_total_share" in p:
        out.append(
            _warn(
                NEGATIVE_TOTALS,
                p["negative_total_share"] <= MAX_NEGATIVE_TOTAL_SHARE,
                f"{p['negative_totals']} trips with a negative total",
                f"{p['negative_totals']} trips ({p['negative_total_share']:.2%}) have a "
                "negative total",
                {
                    "trips": p["negative_totals"],
                    "share": p["negative_total_share"],
                    "threshold": MAX_NEGATIVE_TOTAL_SHARE,
                },
            )
        )
    if "passenger_count_null_rate" in p:
        out.append(
            _warn(
                PASSENGER_COUNT_PRESENT,
                p["passenger_count_null_rate"] <= MAX_PASSENGER_NULL_RATE,
                f"passenger_count null in {p['passenger_count_null_rate']:.2%} of trips",
                f"passenger_count null in {p['passenger_count_null_rate']:.2%} of trips "
                f"(threshold {MAX_PASSENGER_NULL_RATE:.0%})",
                {
                    "null_rate": p["passenger_count_null_rate"],
                    "threshold": MAX_PASSENGER_NULL_RATE,
                },
            )
        )
    return out


def warning_names(service: str, contract: TableContract) -> list[str]:
    names = [PICKUPS_IN_MONTH, DROPOFF_AFTER_PICKUP, LOCATION_IDS_PRESENT]
    if "total_amount" in contract.column_names:
        names.append(NEGATIVE_TOTALS)
    if "passenger_count" in contract.column_names:
        names.append(PASSENGER_COUNT_PRESENT)
    return names


# --- warehouse ---


def slice_outcome(slice_rows: int, lake_rows: int, month: date) -> Outcome:
    meta = {"warehouse_rows": slice_rows, "lake_rows": lake_rows}
    if slice_rows == lake_rows:
        return Outcome(SLICE_MATCHES_LAKE, True, ERROR, f"{slice_rows} rows for {month}", meta)
    return Outcome(
        SLICE_MATCHES_LAKE,
        False,
        ERROR,
        f"the {month} slice has {slice_rows} rows but the lake file has {lake_rows}",
        meta,
    )


# --- zones ---


def zone_outcomes(parquet: str | os.PathLike) -> list[Outcome]:
    con = duckdb.connect()
    try:
        rows, distinct, null_ids, null_boroughs = con.execute(
            "SELECT count(*), count(DISTINCT location_id), count(*) - count(location_id), "
            "count(*) - count(borough) FROM read_parquet(?)",
            [str(parquet)],
        ).fetchone()
    finally:
        con.close()
    unique_ok = rows == distinct == ZONE_COUNT and null_ids == 0
    return [
        Outcome(
            UNIQUE_LOCATION_IDS,
            unique_ok,
            ERROR,
            f"{ZONE_COUNT} zones, each id once"
            if unique_ok
            else f"{rows} rows with {distinct} distinct location ids ({null_ids} null); "
            f"expected {ZONE_COUNT} unique ids",
            {"rows": rows, "distinct_ids": distinct, "null_ids": null_ids},
        ),
        Outcome(
            BOROUGH_PRESENT,
            null_boroughs == 0,
            ERROR,
            "every zone has a borough"
            if null_boroughs == 0
            else f"{null_boroughs} zones have no borough",
            {"null_boroughs": null_boroughs},
        ),
    ]


def combine(name: str, by_month: list[tuple[str, Outcome]]) -> Outcome:
    """One outcome for a run over several months: passes only if every month passes."""
    failing = [(m, o) for m, o in by_month if not o.passed]
    severity = ERROR if any(o.severity == ERROR for _, o in by_month) else WARN
    metadata = {f"{m}": o.description for m, o in by_month}
    if not failing:
        return Outcome(name, True, severity, f"all {len(by_month)} months pass", metadata)
    detail = "; ".join(f"{m}: {o.description}" for m, o in failing)
    return Outcome(
        name, False, severity, f"{len(failing)} of {len(by_month)} months fail: {detail}", metadata
    )


# --- marts ---


def counted_once_outcome(mart_trips: dict[str, int], source_trips: dict[str, int]) -> Outcome:
    meta = {f"{s}_mart_trips": mart_trips.get(s, 0) for s in source_trips}
    meta.update({f"{s}_table_trips": n for s, n in source_trips.items()})
    wrong = [
        f"{s}: {mart_trips.get(s, 0)} in the mart vs {n} in the table"
        for s, n in source_trips.items()
        if mart_trips.get(s, 0) != n
    ]
    if not wrong:
        return Outcome(EVERY_TRIP_COUNTED_ONCE, True, ERROR, "mart trips = table trips", meta)
    return Outcome(EVERY_TRIP_COUNTED_ONCE, False, ERROR, "; ".join(wrong), meta)
