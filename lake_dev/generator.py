"""Deterministic TLC-like monthly files for the demo, the tests and the benchmark.

The same (service, month, rows) always gives the same bytes. The files follow the published
formats: each service's header for its era, blanks where the TLC leaves them, a trailing comma
when the last column is empty (green 2019-01), out-of-month pickups, refunds with negative
amounts, and the DataTalksClub 7-column fhv header. No Dagster import.

    python -m lake_dev.generator --out data/mirror --months 2021-01 2021-02 --rows 5000
"""

from __future__ import annotations

import argparse
import gzip
import zlib
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from isal import igzip

YELLOW_HEADER = [
    "VendorID", "tpep_pickup_datetime", "tpep_dropoff_datetime", "passenger_count",
    "trip_distance", "RatecodeID", "store_and_fwd_flag", "PULocationID", "DOLocationID",
    "payment_type", "fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount",
    "improvement_surcharge", "total_amount", "congestion_surcharge",
]  # fmt: skip
GREEN_HEADER = [
    "VendorID", "lpep_pickup_datetime", "lpep_dropoff_datetime", "store_and_fwd_flag",
    "RatecodeID", "PULocationID", "DOLocationID", "passenger_count", "trip_distance",
    "fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount", "ehail_fee",
    "improvement_surcharge", "total_amount", "payment_type", "trip_type", "congestion_surcharge",
]  # fmt: skip
# The DataTalksClub fhv release's header (the original TLC one has 6 columns and PULocationID).
FHV_HEADER = [
    "dispatching_base_num", "pickup_datetime", "dropOff_datetime", "PUlocationID",
    "DOlocationID", "SR_Flag", "Affiliated_base_number",
]  # fmt: skip
HEADERS = {"yellow": YELLOW_HEADER, "green": GREEN_HEADER, "fhv": FHV_HEADER}
BOROUGHS = ["Manhattan", "Queens", "Brooklyn", "Bronx", "Staten Island", "EWR"]
CHUNK_ROWS = 250_000
PASSENGERS_P = [0.02, 0.7, 0.14, 0.05, 0.03, 0.04, 0.02]
RATECODE_P = [0.95, 0.02, 0.01, 0.01, 0.01]


def seed_for(service: str, month: date, chunk: int = 0) -> int:
    return zlib.crc32(f"{service}:{month:%Y-%m}:{chunk}".encode())


def _month_bounds(month: date) -> tuple[np.datetime64, int]:
    start = np.datetime64(f"{month:%Y-%m}-01T00:00:00", "s")
    nxt = np.datetime64(f"{month:%Y-%m}", "M") + np.timedelta64(1, "M")
    seconds = int((nxt.astype("datetime64[s]") - start) / np.timedelta64(1, "s"))
    return start, seconds


def _nullable(values: np.ndarray, mask: np.ndarray) -> pa.Array:
    return pa.array(values, mask=mask)


def _times(
    rng: np.random.Generator, month: date, n: int, first: int, total: int
) -> tuple[pa.Array, pa.Array]:
    """Pickups and dropoffs of rows first..first+n of a month of total rows, in the order of the
    TLC's files: the month's time runs down the file hour by hour, in no order within an hour."""
    start, span = _month_bounds(month)
    low = span * first // total
    seconds = rng.integers(low, max(span * (first + n) // total, low + 1), n)
    seconds = seconds[np.argsort(seconds // 3600, kind="stable")]
    pickup = start + seconds.astype("timedelta64[s]")
    # About 0.2% of rows carry a pickup outside the month, as the real files do (2008, 2088, the
    # previous month).
    stray = rng.random(n) < 0.002
    if stray.any():
        k = int(stray.sum())
        offsets = rng.choice(np.array([-(365 * 11), 365 * 67, -20], dtype="int64"), size=k).astype(
            "timedelta64[D]"
        )
        pickup[stray] = pickup[stray] + offsets
    duration = rng.gamma(2.0, 420.0, n).astype("int64")
    # A few meters record the dropoff before the pickup: a quarter of the share the
    # dropoff_after_pickup check tolerates (0.1%), so a generated month of demo size passes it.
    duration[rng.random(n) < 0.00025] *= -1
    dropoff = pickup + duration.astype("timedelta64[s]")
    return pa.array(pickup, pa.timestamp("s")), pa.array(dropoff, pa.timestamp("s"))


def _zone_weights() -> tuple[np.ndarray, np.ndarray]:
    """Zone ids and their shares of trips: a few zones take most trips and Manhattan's (in
    write_zones' lookup) come first, as in the real files; the ranking is fixed."""
    rng = np.random.default_rng(265)
    ids = np.arange(1, 266)
    manhattan = (ids > 1) & (ids < 264) & ((ids - 1) % len(BOROUGHS) == 0)
    ids = np.concatenate([rng.permutation(ids[manhattan]), rng.permutation(ids[~manhattan])])
    weights = 1.0 / (np.arange(265) + 4.0) ** 1.3
    return ids, weights / weights.sum()


ZONE_IDS, ZONE_P = _zone_weights()


def _zones(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(ZONE_IDS, n, p=ZONE_P)


def _money(rng: np.random.Generator, n: int, distance: np.ndarray) -> dict:
    # The meter counts in 50-cent steps.
    fare = 2.5 + 0.5 * np.round((distance * 2.5 + rng.gamma(1.5, 1.2, n)) / 0.5)
    extra = rng.choice(np.array([0.0, 0.5, 1.0, 2.5, 3.0]), n)
    mta = np.full(n, 0.5)
    card = rng.random(n) < 0.7
    tip = np.round(fare * rng.uniform(0.0, 0.3, n), 2)
    # Riders often tip whole dollars.
    tip = np.where(card, np.where(rng.random(n) < 0.3, np.round(tip), tip), 0.0)
    tolls = np.where(rng.random(n) < 0.05, 6.12, 0.0)
    improvement = np.full(n, 0.3)
    # Refunds and disputes: every amount of the row negated, as the TLC records them.
    refund = rng.random(n) < 0.005
    sign = np.where(refund, -1.0, 1.0)
    parts = {
        "fare_amount": fare * sign,
        "extra": extra * sign,
        "mta_tax": mta * sign,
        "tip_amount": tip * sign,
        "tolls_amount": tolls * sign,
        "improvement_surcharge": improvement * sign,
    }
    payment = np.where(card, 1, rng.choice(np.array([2, 3, 4]), n, p=[0.9, 0.05, 0.05]))
    payment = np.where(refund, 4, payment)
    return {"parts": parts, "payment": payment, "sign": sign}


def _yellow_or_green(
    service: str, month: date, n: int, rng: np.random.Generator, first: int, total: int
) -> pa.Table:
    pickup, dropoff = _times(rng, month, n, first, total)
    distance = np.round(rng.gamma(1.6, 1.9, n), 2)
    m = _money(rng, n, distance)
    has_congestion = month >= date(2019, 2, 1)
    congestion = np.where(rng.random(n) < 0.8, 2.5 if service == "yellow" else 2.75, 0.0)
    congestion = congestion * m["sign"]
    total = np.round(sum(m["parts"].values()) + (congestion if has_congestion else 0.0), 2)
    # From 2020 on some rows come without vendor, passengers, rate code, flag and payment type.
    unknown = (rng.random(n) < 0.02) if month >= date(2020, 1, 1) else np.zeros(n, dtype=bool)
    no_congestion = np.full(n, not has_congestion)
    cols = {
        "VendorID": _nullable(rng.choice(np.array([1, 2]), n), unknown),
        "pickup": pickup,
        "dropoff": dropoff,
        "passenger_count": _nullable(rng.choice(np.arange(0, 7), n, p=PASSENGERS_P), unknown),
        "trip_distance": pa.array(distance),
        "RatecodeID": _nullable(rng.choice(np.arange(1, 6), n, p=RATECODE_P), unknown),
        "store_and_fwd_flag": pa.array(np.where(rng.random(n) < 0.01, "Y", "N"), mask=unknown),
        "PULocationID": pa.array(_zones(rng, n)),
        "DOLocationID": pa.array(_zones(rng, n)),
        "payment_type": _nullable(m["payment"], unknown),
        **{k: pa.array(np.round(v, 2)) for k, v in m["parts"].items()},
        "total_amount": pa.array(total),
        "congestion_surcharge": pa.array(np.round(congestion, 2), mask=no_congestion | unknown),
    }
    if service == "yellow":
        order = YELLOW_HEADER
        cols["tpep_pickup_datetime"] = cols.pop("pickup")
        cols["tpep_dropoff_datetime"] = cols.pop("dropoff")
    else:
        order = GREEN_HEADER
        cols["lpep_pickup_datetime"] = cols.pop("pickup")
        cols["lpep_dropoff_datetime"] = cols.pop("dropoff")
        cols["ehail_fee"] = pa.nulls(n, pa.float64())
        cols["trip_type"] = pa.array(rng.choice(np.array([1, 2]), n, p=[0.97, 0.03]))
    return pa.table([cols[c] for c in order], names=order)


def _fhv(month: date, n: int, rng: np.random.Generator, first: int, total: int) -> pa.Table:
    pickup, dropoff = _times(rng, month, n, first, total)
    bases = np.array([f"B{b:05d}" for b in (1, 13, 14, 2532, 2800, 3016, 3404)])
    base = rng.choice(bases, n)
    # Many fhv rows have no location at all.
    pu_blank = rng.random(n) < 0.6
    do_blank = rng.random(n) < 0.3
    affiliated_blank = rng.random(n) < 0.05
    cols = [
        pa.array(base),
        pickup,
        dropoff,
        pa.array(_zones(rng, n), mask=pu_blank),
        pa.array(_zones(rng, n), mask=do_blank),
        pa.array(np.ones(n, dtype="int64"), mask=rng.random(n) >= 0.01),
        pa.array(np.where(rng.random(n) < 0.9, base, rng.choice(bases, n)), mask=affiliated_blank),
    ]
    return pa.table(cols, names=FHV_HEADER)


def month_table(
    service: str, month: date, rows: int, chunk: int = 0, first: int = 0, total: int | None = None
) -> pa.Table:
    """Rows first..first+rows (chunk number chunk) of a month of total rows (default: rows)."""
    rng = np.random.default_rng(seed_for(service, month, chunk))
    total = total or rows
    if service in ("yellow", "green"):
        return _yellow_or_green(service, month, rows, rng, first, total)
    if service == "fhv":
        return _fhv(month, rows, rng, first, total)
    raise ValueError(f"unknown service {service!r}")


def write_month(service: str, month: date, rows: int, dest: str | Path) -> Path:
    """Write a gzip CSV of rows data rows to dest (created atomically); returns dest."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    options = pacsv.WriteOptions(include_header=False, quoting_style="none", delimiter=",")
    # zlib at gzip's default level, as the published files are compressed: the size and the
    # inflate cost of a month then match the real ones.
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz,
    ):
        gz.write((",".join(HEADERS[service]) + "\n").encode())
        done, chunk = 0, 0
        while done < rows:
            n = min(CHUNK_ROWS, rows - done)
            buf = pa.BufferOutputStream()
            pacsv.write_csv(month_table(service, month, n, chunk, done, rows), buf, options)
            gz.write(buf.getvalue().to_pybytes())
            done += n
            chunk += 1
    tmp.replace(dest)
    return dest


def write_zones(dest: str | Path) -> Path:
    """A 265-zone lookup in the TLC's format: quoted fields, CRLF, Unknown NV/NA at the end."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    lines = ['"LocationID","Borough","Zone","service_zone"']
    for i in range(1, 264):
        borough = BOROUGHS[(i - 1) % len(BOROUGHS)] if i > 1 else "EWR"
        service_zone = {"EWR": "EWR", "Manhattan": "Yellow Zone"}.get(borough, "Boro Zone")
        lines.append(f'{i},"{borough}","Zone {i}, {borough}","{service_zone}"')
    lines += ['264,"Unknown","NV","N/A"', '265,"Unknown","NA","N/A"']
    dest.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return dest


def month_file_name(service: str, month: date) -> str:
    return f"{service}_tripdata_{month:%Y-%m}.csv.gz"


def write_mirror(
    out: str | Path, services: Iterable[str], months: Iterable[date], rows: dict[str, int]
) -> list[Path]:
    """The DataTalksClub release layout: <out>/<service>/<service>_tripdata_YYYY-MM.csv.gz and
    <out>/misc/taxi_zone_lookup.csv."""
    out = Path(out)
    written = []
    for service in services:
        for month in months:
            written.append(
                write_month(
                    service, month, rows[service], out / service / month_file_name(service, month)
                )
            )
    written.append(write_zones(out / "misc" / "taxi_zone_lookup.csv"))
    return written


def mirror_settings(mirror: Path) -> dict[str, str]:
    """The source settings (TLC_SOURCE_URL, TLC_ZONES_URL) that read a mirror of write_mirror's."""
    return {
        "TLC_SOURCE_URL": f"file://{mirror}/{{service}}/{{service}}_tripdata_{{year}}-{{month}}.csv.gz",
        "TLC_ZONES_URL": f"file://{mirror}/misc/taxi_zone_lookup.csv",
    }


def rows_per_service(rows: int) -> dict[str, int]:
    """The demo's split of a month's rows: yellow gets them all, fhv a half, green a quarter."""
    return {"yellow": rows, "green": max(1, rows // 4), "fhv": max(1, rows // 2)}


def _parse_month(text: str) -> date:
    year, month = text.split("-")
    return date(int(year), int(month), 1)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", required=True, help="mirror root folder")
    p.add_argument("--services", nargs="+", default=list(HEADERS))
    p.add_argument("--months", nargs="+", required=True, type=_parse_month, help="YYYY-MM ...")
    p.add_argument(
        "--rows", type=int, default=5000, help="rows per month (fhv and green get fewer)"
    )
    args = p.parse_args(argv)
    for path in write_mirror(args.out, args.services, args.months, rows_per_service(args.rows)):
        print(path)


# How the TLC's Parquet files drift from month to month; write_month_parquet applies one.
PARQUET_DRIFTS = {
    # 2022: lower-case airport_fee, int64 ids, microsecond timestamps
    "2022": {"airport_fee": "airport_fee", "id_type": "int64", "ts_unit": "us", "cbd": False},
    # 2023: Airport_fee, int32 ids, nanosecond timestamps
    "2023": {"airport_fee": "Airport_fee", "id_type": "int32", "ts_unit": "ns", "cbd": False},
    # 2025: a new cbd_congestion_fee column, ids stored as doubles
    "2025": {"airport_fee": "Airport_fee", "id_type": "double", "ts_unit": "us", "cbd": True},
}
ID_COLUMNS = {"VendorID", "RatecodeID", "PULocationID", "DOLocationID", "payment_type", "trip_type"}
ID_COLUMNS |= {"passenger_count", "PUlocationID", "DOlocationID", "SR_Flag"}


def parquet_table(service: str, month: date, rows: int, drift: str) -> pa.Table:
    """A month as the TLC publishes it in Parquet, with the column names and types of drift."""
    d = PARQUET_DRIFTS[drift]
    table = month_table(service, month, rows)
    rng = np.random.default_rng(seed_for(service, month, 99))
    columns, names = [], []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name in ID_COLUMNS:
            column = column.cast(pa.type_for_alias(d["id_type"]))
        elif pa.types.is_timestamp(column.type):
            column = column.cast(pa.timestamp(d["ts_unit"]))
        columns.append(column)
        names.append(name)
    if service == "yellow":
        names.append(d["airport_fee"])
        columns.append(pa.array(np.where(rng.random(rows) < 0.1, 1.75, 0.0)))
    if d["cbd"] and service in ("yellow", "green"):
        names.append("cbd_congestion_fee")
        columns.append(pa.array(np.where(rng.random(rows) < 0.6, 0.75, 0.0)))
    return pa.table(columns, names=names)


def write_month_parquet(
    service: str, month: date, rows: int, dest: str | Path, drift: str = "2023"
) -> Path:
    import pyarrow.parquet as pq

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(parquet_table(service, month, rows, drift), dest, compression="snappy")
    return dest


def gzip_text(path: str | Path) -> str:
    """The text of a gzip file (for tests and tools that edit a generated month)."""
    with igzip.open(path, "rt", newline="") as f:
        return f.read()


def gzip_bytes(text: str) -> bytes:
    return igzip.compress(text.encode(), mtime=0)


if __name__ == "__main__":
    main()
