import csv
import gzip
from datetime import date

import duckdb
import pyarrow.parquet as pq
import pytest

from lake_assets.convert import BadInputError, csv_to_parquet, write_rejects
from lake_assets.schemas import FHV, GREEN, TAXI_ZONES, YELLOW, arrow_schema, contract_for
from lake_dev import generator

JAN19, JAN21 = date(2019, 1, 1), date(2021, 1, 1)
Y_HEADER = ",".join(generator.YELLOW_HEADER)
Y_ROW = "1,2021-01-01 00:30:10,2021-01-01 00:36:12,1,2.10,1,N,142,43,2,8,3,0.5,0,0,0.3,11.8,2.5"


def _schema(path):
    return pq.read_schema(path).remove_metadata()


def _rows(path):
    return duckdb.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()


def _csv(tmp_path, text, name="t.csv", gz=True):
    data = text.encode()
    path = tmp_path / (name + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# --- the real TLC samples (../shared/data/tlc) ---


@pytest.mark.parametrize(
    "name, contract, month, rows",
    [
        ("yellow_tripdata_2019-01.sample.csv.gz", YELLOW, JAN19, 100),
        ("green_tripdata_2019-01.sample.csv.gz", GREEN, JAN19, 100),
        ("green_tripdata_2020-06.sample.csv.gz", GREEN, date(2020, 6, 1), 100),
        ("fhv_tripdata_2019-01.sample.csv.gz", FHV, JAN19, 100),
    ],
)
def test_real_samples_convert_with_the_contract_schema(
    samples, tmp_path, name, contract, month, rows
):
    out = tmp_path / "out.parquet"
    result = csv_to_parquet(samples / name, out, contract, month, name=name)
    assert (result.rows_written, result.rows_rejected) == (rows, 0)
    assert pq.ParquetFile(out).metadata.num_rows == rows
    assert _schema(out) == arrow_schema(contract)
    assert pq.ParquetFile(out).metadata.row_group(0).column(0).compression == "ZSTD"


def test_green_2019_01_trailing_comma_gives_null_congestion(samples, tmp_path):
    out = tmp_path / "g.parquet"
    csv_to_parquet(samples / "green_tripdata_2019-01.sample.csv.gz", out, GREEN, JAN19)
    got = duckdb.execute(
        f"SELECT count(*), count(congestion_surcharge), count(ehail_fee), min(pickup_datetime) "
        f"FROM '{out}'"
    ).fetchone()
    assert got[:3] == (100, 0, 0)
    assert str(got[3]) == "2018-12-21 15:17:29"  # kept: out-of-month pickups are data, not errors


def test_original_tlc_fhv_header_lacks_affiliated_base(samples, tmp_path):
    out = tmp_path / "f.parquet"
    result = csv_to_parquet(samples / "fhv_tripdata_2019-01.sample.csv.gz", out, FHV, JAN19)
    assert result.missing_columns == ["affiliated_base_number"]
    assert duckdb.execute(f"SELECT count(affiliated_base_number) FROM '{out}'").fetchone() == (0,)


def test_zone_lookup_crlf_quoted_keeps_the_na_zone(samples, tmp_path):
    out = tmp_path / "z.parquet"
    result = csv_to_parquet(samples / "taxi+_zone_lookup.csv", out, TAXI_ZONES, None)
    assert result.rows_written == 265
    assert _schema(out) == arrow_schema(TAXI_ZONES)
    assert _rows(out)[-2:] == [(264, "Unknown", "NV", "N/A"), (265, "Unknown", "NA", "N/A")]
    assert duckdb.execute(f"SELECT count(*) FROM '{out}' WHERE borough IS NULL").fetchone() == (0,)


def test_cut_off_last_row_fails_naming_file_line_and_text(samples, tmp_path):
    out = tmp_path / "y.parquet"
    with pytest.raises(BadInputError) as info:
        csv_to_parquet(
            samples / "yellow_tripdata_2021-01.sample.csv.gz",
            out,
            YELLOW,
            JAN21,
            name="yellow_tripdata_2021-01.csv.gz",
        )
    assert str(info.value).startswith(
        "yellow_tripdata_2021-01.csv.gz: line 22794: expected 18 fields, found 2: '1,2021-0'."
    )
    assert (info.value.line, info.value.value) == (22794, "1,2021-0")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_cut_off_last_row_quarantined(samples, tmp_path):
    out = tmp_path / "y.parquet"
    result = csv_to_parquet(
        samples / "yellow_tripdata_2021-01.sample.csv.gz", out, YELLOW, JAN21, bad_rows="quarantine"
    )
    assert (result.rows_written, result.rows_rejected, result.rows_read) == (22792, 1, 22793)
    assert pq.ParquetFile(out).metadata.num_rows == 22792
    (reject,) = result.rejects
    assert (reject.line, reject.error, reject.raw_line) == (
        22794,
        "expected 18 fields, found 2",
        "1,2021-0",
    )
    # the real figures PROVENANCE.md gives for this sample
    assert duckdb.execute(
        f"SELECT count(*) FILTER (store_and_fwd_flag = 'Y'), count(*) FILTER (total_amount < 0) "
        f"FROM '{out}'"
    ).fetchone() == (384, 199 - _negative_rows_with_positive_total(out))


def _negative_rows_with_positive_total(out):
    # PROVENANCE counts rows with any negative amount; total_amount < 0 is a subset of those.
    return duckdb.execute(
        f"SELECT count(*) FROM '{out}' WHERE total_amount >= 0 AND least(fare_amount, extra, "
        "mta_tax, tip_amount, tolls_amount, improvement_surcharge, congestion_surcharge) < 0"
    ).fetchone()[0]


def test_pre_2017_yellow_era_is_an_unknown_column(samples, tmp_path):
    with pytest.raises(BadInputError) as info:
        csv_to_parquet(
            samples / "yellow_tripdata_2015-01.sample.csv.gz",
            tmp_path / "o.parquet",
            YELLOW,
            date(2015, 1, 1),
            name="y2015",
        )
    assert str(info.value).startswith("y2015: line 1, column 6: unknown column 'pickup_longitude'")
    assert (info.value.line, info.value.column) == (1, "pickup_longitude")
    assert not (tmp_path / "o.parquet").exists()


# --- generated months: every service and era lands on one schema ---


@pytest.mark.parametrize("service", ["yellow", "green", "fhv"])
def test_generated_months_across_eras_share_one_schema(tmp_path, service):
    contract = contract_for(service)
    schemas = set()
    for i, month in enumerate([date(2019, 1, 1), date(2019, 6, 1), date(2020, 3, 1), JAN21]):
        src = generator.write_month(service, month, 700 + i, tmp_path / f"{i}.csv.gz")
        out = tmp_path / f"{i}.parquet"
        assert csv_to_parquet(src, out, contract, month).rows_written == 700 + i
        assert pq.ParquetFile(out).metadata.num_rows == 700 + i
        schemas.add(_schema(out))
        assert duckdb.execute(f"SELECT DISTINCT source_month FROM '{out}'").fetchall() == [(month,)]
    assert schemas == {arrow_schema(contract)}


def test_blank_ids_stay_integers_not_floats(tmp_path):
    src = generator.write_month("yellow", date(2020, 6, 1), 3000, tmp_path / "y.csv.gz")
    out = tmp_path / "y.parquet"
    csv_to_parquet(src, out, YELLOW, date(2020, 6, 1))
    nulls, total = duckdb.execute(
        f"SELECT count(*) - count(vendor_id), count(*) FROM '{out}'"
    ).fetchone()
    assert 0 < nulls < total
    assert str(_schema(out).field("vendor_id").type) == "int64"


def test_crlf_and_integral_decimals_are_accepted(tmp_path):
    text = (
        "dispatching_base_num,pickup_datetime,dropOff_datetime,PUlocationID,DOlocationID,"
        "SR_Flag,Affiliated_base_number\r\n"
        "B00001,2019-01-01 00:30:00,2019-01-01 02:51:55,264.0,,,B00001\r\n"
        '"B00002",2019-01-01 00:45:00,2019-01-01 00:54:49,,7,1,\r\n'
    )
    out = tmp_path / "f.parquet"
    csv_to_parquet(_csv(tmp_path, text), out, FHV, JAN19)
    assert _rows(out) == [
        (
            "B00001",
            *_ts("2019-01-01 00:30:00", "2019-01-01 02:51:55"),
            264,
            None,
            None,
            "B00001",
            JAN19,
        ),
        ("B00002", *_ts("2019-01-01 00:45:00", "2019-01-01 00:54:49"), None, 7, 1, None, JAN19),
    ]


def _ts(*texts):
    from datetime import datetime

    return [datetime.fromisoformat(t) for t in texts]


def test_header_only_file_is_zero_rows(tmp_path):
    out = tmp_path / "e.parquet"
    result = csv_to_parquet(_csv(tmp_path, Y_HEADER + "\n"), out, YELLOW, JAN21)
    assert result.rows_written == 0
    assert _schema(out) == arrow_schema(YELLOW)


@pytest.mark.parametrize(
    "rows, expected",
    [
        (
            [Y_ROW, Y_ROW.replace("2.10", "two")],
            "t.csv: line 3, column 'trip_distance': cannot parse 'two' as DOUBLE",
        ),
        (
            [Y_ROW.replace("2021-01-01 00:36:12", "2021-13-45 00:00:00"), Y_ROW],
            "t.csv: line 2, column 'tpep_dropoff_datetime': cannot parse '2021-13-45 00:00:00' "
            "as TIMESTAMP",
        ),
        (
            [Y_ROW, Y_ROW, Y_ROW.replace(",142,", ",abc,")],
            "t.csv: line 4, column 'PULocationID': cannot parse 'abc' as BIGINT",
        ),
        (
            [Y_ROW, Y_ROW.replace(",142,", ",142.5,")],
            "t.csv: line 3, column 'PULocationID': not a whole number",
        ),
        (
            [Y_ROW, Y_ROW.replace(",142,", ",nan,")],
            "t.csv: line 3, column 'PULocationID': not a whole number",
        ),
        (
            [Y_ROW.replace(",142,", ",-inf,")],
            "t.csv: line 2, column 'PULocationID': not a whole number",
        ),
        (
            [Y_ROW, Y_ROW, Y_ROW.replace(",142,", ",9.5e18,")],
            "t.csv: line 4, column 'PULocationID': not a whole number",
        ),
        ([Y_ROW + ",7"], "t.csv: line 2: expected 18 fields, found 19"),
    ],
    ids=[
        "float",
        "timestamp",
        "integer",
        "fraction-in-id",
        "nan-id",
        "infinite-id",
        "id-beyond-bigint",
        "too-many-fields",
    ],
)
def test_unparseable_values_fail_naming_line_column_value_and_write_nothing(
    tmp_path, rows, expected
):
    src = _csv(tmp_path, "\n".join([Y_HEADER, *rows]) + "\n", gz=False)
    out = tmp_path / "o.parquet"
    with pytest.raises(BadInputError) as info:
        csv_to_parquet(src, out, YELLOW, JAN21, name="t.csv")
    assert str(info.value).startswith(expected)
    assert "Nothing was written" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_quarantine_collects_every_kind_of_bad_row(tmp_path):
    rows = [
        Y_ROW,
        Y_ROW.replace("2.10", "two"),
        Y_ROW,
        Y_ROW.replace(",142,", ",142.5,"),
        Y_ROW + ",7",
        Y_ROW,
    ]
    src = _csv(tmp_path, "\n".join([Y_HEADER, *rows]) + "\n")
    out = tmp_path / "o.parquet"
    result = csv_to_parquet(src, out, YELLOW, JAN21, bad_rows="quarantine")
    assert (result.rows_written, result.rows_rejected, result.rows_read) == (3, 3, 6)
    assert [(r.line, r.column, r.value) for r in result.rejects] == [
        (3, "trip_distance", "two"),
        (5, "PULocationID", "142.5"),
        (6, "", Y_ROW + ",7"),
    ]
    write_rejects(result.rejects, tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as f:
        assert [r["line"] for r in csv.DictReader(f)] == ["3", "5", "6"]


def test_unknown_and_duplicate_columns(tmp_path):
    with pytest.raises(BadInputError, match=r"t.csv: line 1, column 19: unknown column 'tip_pct'"):
        csv_to_parquet(
            _csv(tmp_path, Y_HEADER + ",tip_pct\n"), tmp_path / "o", YELLOW, JAN21, name="t.csv"
        )
    dup = Y_HEADER.replace("RatecodeID", "RateCodeID") + ",ratecodeid\n"
    with pytest.raises(
        BadInputError, match="'ratecodeid' maps to 'ratecode_id', which 'RateCodeID'"
    ):
        csv_to_parquet(_csv(tmp_path, dup), tmp_path / "o", YELLOW, JAN21)


def test_empty_file(tmp_path):
    with pytest.raises(BadInputError, match="e.csv: line 1: the file is empty"):
        csv_to_parquet(
            _csv(tmp_path, "", name="e.csv"), tmp_path / "o", YELLOW, JAN21, name="e.csv"
        )


def test_invalid_mode():
    with pytest.raises(ValueError, match="bad_rows must be one of"):
        csv_to_parquet("x", "y", YELLOW, JAN21, bad_rows="drop")


def test_a_header_without_an_end_fails_after_reading_at_most_the_limit(tmp_path):
    import gzip as gz

    from lake_assets.convert import MAX_LINE_BYTES, LimitExceeded, read_header

    path = tmp_path / "zeros.csv.gz"
    path.write_bytes(gz.compress(b"0" * (MAX_LINE_BYTES * 8)))
    with pytest.raises(LimitExceeded) as e:
        read_header(path, "raw/zeros.csv.gz")
    assert str(e.value) == (
        "raw/zeros.csv.gz: line 1 is longer than 1,048,576 bytes (the limit for one record): "
        "not a trip file, or a field with an unclosed quote"
    )
    assert (e.value.file, e.value.line) == ("raw/zeros.csv.gz", 1)
