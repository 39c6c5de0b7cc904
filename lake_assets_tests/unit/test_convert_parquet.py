"""The TLC's Parquet files: drifting names and types land on the one service schema."""

from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake_assets import formats
from lake_assets.convert import BadInputError, to_parquet
from lake_assets.schemas import SERVICES, arrow_schema, contract_for
from lake_dev import generator

JAN24 = date(2024, 1, 1)


@pytest.mark.parametrize("service", SERVICES)
def test_every_drift_lands_on_the_same_schema_with_exact_rows(tmp_path, service):
    contract = contract_for(service)
    schemas = set()
    for drift in generator.PARQUET_DRIFTS:
        src = generator.write_month_parquet(
            service, JAN24, 900, tmp_path / f"{drift}.parquet", drift
        )
        assert formats.of_file(src) == formats.PARQUET
        out = tmp_path / f"{drift}.out.parquet"
        result = to_parquet(src, out, contract, JAN24)
        assert (result.rows_written, result.rows_rejected) == (900, 0)
        assert pq.ParquetFile(out).metadata.num_rows == 900
        schemas.add(pq.read_schema(out).remove_metadata())
    assert schemas == {arrow_schema(contract)}


def test_values_survive_renames_and_type_changes(tmp_path):
    for drift in ("2022", "2025"):  # airport_fee / Airport_fee, int64 / double ids
        src = generator.write_month_parquet(
            "yellow", JAN24, 300, tmp_path / f"{drift}.parquet", drift
        )
        out = tmp_path / f"{drift}.out.parquet"
        to_parquet(src, out, contract_for("yellow"), JAN24)
        source = pq.read_table(src)
        fee = "airport_fee" if drift == "2022" else "Airport_fee"
        got = duckdb.execute(
            f"SELECT pickup_location_id, airport_fee, pickup_datetime FROM '{out}'"
        ).fetchall()
        assert [r[0] for r in got] == [int(v) for v in source["PULocationID"].to_pylist()]
        assert [r[1] for r in got] == source[fee].to_pylist()
        assert [r[2] for r in got] == source["tpep_pickup_datetime"].to_pylist()
    assert duckdb.execute(
        f"SELECT count(cbd_congestion_fee) FROM '{tmp_path / '2025.out.parquet'}'"
    ).fetchone() == (300,)


def _with_column(tmp_path, name: str, values: list, type_=None):
    table = generator.parquet_table("yellow", JAN24, len(values), "2023")
    i = table.column_names.index(name)
    table = table.set_column(i, name, pa.array(values, type=type_))
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    return path


def test_a_fractional_id_fails_naming_row_column_value(tmp_path):
    src = _with_column(tmp_path, "PULocationID", [1.0, 2.0, 132.5, 4.0], pa.float64())
    with pytest.raises(BadInputError) as info:
        to_parquet(src, tmp_path / "o.parquet", contract_for("yellow"), JAN24, name="y.parquet")
    assert str(info.value).startswith(
        "y.parquet: row 3, column 'PULocationID': '132.5' is not a whole number. Nothing was"
    )
    assert (info.value.line, info.value.column, info.value.value) == (3, "PULocationID", "132.5")
    assert not (tmp_path / "o.parquet").exists()


def test_text_in_an_id_column_fails_instead_of_becoming_null(tmp_path):
    src = _with_column(tmp_path, "PULocationID", ["1", "2", "abc", None])
    with pytest.raises(BadInputError) as info:
        to_parquet(src, tmp_path / "o.parquet", contract_for("yellow"), JAN24, name="y.parquet")
    assert str(info.value).startswith(
        "y.parquet: row 3, column 'PULocationID': 'abc' is not a whole number. Nothing was"
    )
    assert not (tmp_path / "o.parquet").exists()
    out = tmp_path / "q.parquet"
    result = to_parquet(src, out, contract_for("yellow"), JAN24, bad_rows="quarantine")
    assert (result.rows_written, result.rows_rejected) == (3, 1)
    assert duckdb.execute(f"SELECT pickup_location_id FROM '{out}'").fetchall() == [
        (1,),
        (2,),
        (None,),
    ]


def test_text_in_a_number_column_is_quarantined(tmp_path):
    src = _with_column(tmp_path, "fare_amount", ["8.5", "abc", "7", None, "x1"])
    out = tmp_path / "o.parquet"
    result = to_parquet(src, out, contract_for("yellow"), JAN24, bad_rows="quarantine")
    assert (result.rows_written, result.rows_rejected, result.rows_read) == (3, 2, 5)
    assert [(r.line, r.column, r.value, r.error) for r in result.rejects] == [
        (2, "fare_amount", "abc", "'abc' is not a DOUBLE"),
        (5, "fare_amount", "x1", "'x1' is not a DOUBLE"),
    ]
    assert duckdb.execute(f"SELECT fare_amount FROM '{out}'").fetchall() == [
        (8.5,),
        (7.0,),
        (None,),
    ]


def test_an_unknown_parquet_column_is_named_without_a_line(tmp_path):
    table = generator.parquet_table("green", JAN24, 5, "2022").append_column(
        "surge_fee", pa.array([1.0] * 5)
    )
    pq.write_table(table, tmp_path / "g.parquet")
    with pytest.raises(BadInputError) as info:
        to_parquet(tmp_path / "g.parquet", tmp_path / "o", contract_for("green"), JAN24, name="g")
    assert str(info.value).startswith("g: column 21: unknown column 'surge_fee'; the green")
    assert info.value.line is None
