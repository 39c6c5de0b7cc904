"""Quality checks as plain functions: pass/fail, severity and the figures they report."""

import gzip
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake_assets import generator, quality
from lake_assets.convert import BadInputError, csv_to_parquet
from lake_assets.schemas import FHV, TAXI_ZONES, YELLOW, arrow_schema

JUN = date(2020, 6, 1)
Y_HEADER = ",".join(generator.YELLOW_HEADER)


def _yellow_row(pickup: str, dropoff: str, total: str = "11.8", pu: str = "142", pax="1") -> str:
    return f"1,{pickup},{dropoff},{pax},2.10,1,N,{pu},43,2,8,3,0.5,0,0,0.3,{total},2.5"


def test_schema_outcome_passes_on_the_contract_and_names_differences(tmp_path):
    ok = quality.schema_outcome(arrow_schema(YELLOW), YELLOW)
    assert (ok.passed, ok.severity) == (True, "ERROR")
    drifted = arrow_schema(YELLOW)
    i = drifted.get_field_index("vendor_id")
    drifted = drifted.set(i, pa.field("vendor_id", pa.float64()))
    drifted = drifted.remove(drifted.get_field_index("airport_fee"))
    drifted = drifted.append(pa.field("Airport_fee", pa.float64()))
    pq.write_table(drifted.empty_table(), tmp_path / "d.parquet")
    bad = quality.schema_outcome(pq.read_schema(tmp_path / "d.parquet"), YELLOW)
    assert (bad.passed, bad.severity) == (False, "ERROR")
    assert bad.metadata["differences"] == (
        "missing airport_fee; unexpected Airport_fee; vendor_id: double instead of int64"
    )


def test_not_empty_and_parity():
    assert quality.not_empty_outcome(10).passed
    empty = quality.not_empty_outcome(0)
    assert (empty.passed, empty.severity, empty.description) == (
        False,
        "ERROR",
        "the month has no rows",
    )
    assert quality.parity_outcome(100, 99, 1).passed
    lost = quality.parity_outcome(100, 97, 1)
    assert not lost.passed
    assert lost.description == "100 source rows but 97 written + 1 rejected: 2 unaccounted for"


@pytest.mark.parametrize(
    "text, rows",
    [
        (b"a,b\n1,2\n\n3,4\n5,6", 3),
        (b"a,b\r\n1,2\r\n\r\n3,4\r\n", 2),
        (b"a\n", 0),
        (b"", 0),
        (b"a\n1\n\n\n\n2\n", 2),
        (b"a\n1,2021-0", 1),
    ],
)
def test_count_data_rows_plain_and_gzip(tmp_path, text, rows):
    (tmp_path / "p.csv").write_bytes(text)
    (tmp_path / "g.csv.gz").write_bytes(gzip.compress(text))
    assert quality.count_data_rows(tmp_path / "p.csv") == rows
    assert quality.count_data_rows(tmp_path / "g.csv.gz") == rows


def _reference_count(text: bytes) -> int:
    """The definition on the whole text at once: lines, less blank ones ("\n" then "\r?\n"),
    less the header."""
    import re

    if not text:
        return 0
    lines = text.count(b"\n") + (0 if text.endswith(b"\n") else 1)
    return max(lines - len(re.findall(rb"\n(?=\r?\n)", text)) - 1, 0)


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 1 << 22])
def test_count_data_rows_blank_lines_across_chunk_boundaries(tmp_path, monkeypatch, chunk):
    import random

    monkeypatch.setattr(quality, "COUNT_CHUNK", chunk)
    rng = random.Random(chunk)
    pieces = [b"1,2", b"\n", b"\r\n", b"\n\n", b"\n\r\n", b"\r", b"x"]
    for i in range(200):
        text = b"a,b\n" + b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        path = tmp_path / f"t{i}.csv"
        path.write_bytes(text)
        assert quality.count_data_rows(path) == _reference_count(text), text


def test_count_of_a_cut_gzip_stream_fails_naming_the_file(tmp_path):
    data = gzip.compress(b"a,b\n" + b"1,2\n" * 50_000)
    (tmp_path / "cut.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match=r"^raw/cut\.csv\.gz: gzip stream is cut or corrupt \("):
        quality.count_data_rows(tmp_path / "cut.csv.gz", "raw/cut.csv.gz")


def test_count_matches_the_real_cut_sample(samples):
    # 22,792 complete rows + the cut-off line: the parser's written + rejected.
    assert quality.count_data_rows(samples / "yellow_tripdata_2021-01.sample.csv.gz") == 22793


def test_profile_and_warnings_on_a_month_with_stray_dates(tmp_path):
    rows = [_yellow_row("2020-06-01 10:00:00", "2020-06-01 10:20:00")] * 90
    rows += [_yellow_row("2008-12-31 23:00:00", "2008-12-31 23:20:00")] * 4  # stray year
    rows += [_yellow_row("2020-05-31 23:50:00", "2020-06-01 00:10:00")] * 2  # previous month
    rows += [_yellow_row("2020-06-03 10:00:00", "2020-06-03 09:00:00")] * 2  # ends before start
    rows += [_yellow_row("2020-06-03 10:00:00", "2020-06-03 10:30:00", total="-11.8")] * 1
    rows += [_yellow_row("2020-06-04 10:00:00", "2020-06-04 10:30:00", pu="", pax="")] * 1
    src = tmp_path / "y.csv"
    src.write_text("\n".join([Y_HEADER, *rows]) + "\n")
    out = tmp_path / "y.parquet"
    csv_to_parquet(src, out, YELLOW, JUN)
    p = quality.profile_trips(out, YELLOW, JUN)
    assert (p["rows"], p["pickups_in_month"], p["dropoff_before_pickup"]) == (100, 94, 2)
    assert (p["negative_totals"], p["pickup_location_nulls"], p["passenger_count_nulls"]) == (
        1,
        1,
        1,
    )
    assert (p["min_pickup"], p["max_pickup"]) == ("2008-12-31 23:00:00", "2020-06-04 10:00:00")
    outcomes = {o.name: o for o in quality.warning_outcomes("yellow", p)}
    assert {n: (o.passed, o.severity) for n, o in outcomes.items()} == {
        "pickups_in_month": (False, "WARN"),
        "dropoff_after_pickup": (False, "WARN"),
        "location_ids_present": (True, "WARN"),
        "negative_totals": (True, "WARN"),
        "passenger_count_present": (True, "WARN"),
    }
    assert outcomes["pickups_in_month"].metadata["share"] == 0.94
    assert outcomes["pickups_in_month"].metadata["outside_month"] == 6
    assert outcomes["dropoff_after_pickup"].description == "2 trips (2.00%) end before they start"
    assert outcomes["location_ids_present"].metadata["pickup_null_rate"] == 0.01


def test_fhv_has_no_money_or_passenger_checks(tmp_path):
    src = generator.write_month("fhv", JUN, 2000, tmp_path / "f.csv.gz")
    csv_to_parquet(src, tmp_path / "f.parquet", FHV, JUN)
    p = quality.profile_trips(tmp_path / "f.parquet", FHV, JUN)
    names = [o.name for o in quality.warning_outcomes("fhv", p)]
    assert (
        names
        == quality.warning_names("fhv", FHV)
        == [
            "pickups_in_month",
            "dropoff_after_pickup",
            "location_ids_present",
        ]
    )
    # generated fhv months leave ~60% of pickup zones blank: under the loose fhv threshold
    assert 0.5 < p["pickup_location_null_rate"] < 0.7


def test_zone_outcomes(tmp_path, samples):
    good = tmp_path / "z.parquet"
    csv_to_parquet(samples / "taxi+_zone_lookup.csv", good, TAXI_ZONES, None)
    assert [(o.name, o.passed) for o in quality.zone_outcomes(good)] == [
        ("unique_location_ids", True),
        ("borough_present", True),
    ]
    text = (samples / "taxi+_zone_lookup.csv").read_text().replace('"EWR","Newark', ',"Newark')
    text = text.replace('\n2,"Queens"', '\n1,"Queens"')
    (tmp_path / "bad.csv").write_text(text)
    csv_to_parquet(tmp_path / "bad.csv", tmp_path / "bad.parquet", TAXI_ZONES, None)
    unique, borough = quality.zone_outcomes(tmp_path / "bad.parquet")
    assert (unique.passed, borough.passed) == (False, False)
    assert unique.description == (
        "265 rows with 264 distinct location ids (0 null); expected 265 unique ids"
    )
    assert borough.description == "1 zones have no borough"


def test_counted_once():
    assert quality.counted_once_outcome({"yellow": 5, "fhv": 2}, {"yellow": 5, "fhv": 2}).passed
    bad = quality.counted_once_outcome({"yellow": 6}, {"yellow": 5, "fhv": 0})
    assert not bad.passed
    assert bad.description == "yellow: 6 in the mart vs 5 in the table"
