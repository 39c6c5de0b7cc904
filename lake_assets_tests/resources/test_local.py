"""The local backend on its own: atomic lake writes, DuckDB month replacement, lock waiting."""

import time
from datetime import date

import duckdb
import pytest

from lake_assets.convert import csv_to_parquet
from lake_assets.resources import DuckDBWarehouse, LocalLake
from lake_assets.resources.local import WarehouseLocked
from lake_assets.schemas import GREEN
from lake_assets_tests.helpers import hold_duckdb_lock
from lake_dev import generator

JAN, FEB = date(2020, 1, 1), date(2020, 2, 1)


@pytest.fixture
def parquet(tmp_path):
    def make(month: date, rows: int):
        src = generator.write_month("green", month, rows, tmp_path / f"g{month}_{rows}.csv.gz")
        out = tmp_path / f"g{month}_{rows}.parquet"
        csv_to_parquet(src, out, GREEN, month)
        return out.as_uri()

    return make


def test_lake_write_is_all_or_nothing(tmp_path):
    lake = LocalLake(base_dir=str(tmp_path / "lake"))
    with lake.open_write("raw/x/f.bin") as f:
        f.write(b"good")
    with pytest.raises(RuntimeError):
        with lake.open_write("raw/x/f.bin") as f:
            f.write(b"half")
            raise RuntimeError("killed mid-download")
    assert (tmp_path / "lake/raw/x/f.bin").read_bytes() == b"good"
    assert [p.name for p in (tmp_path / "lake/raw/x").iterdir()] == ["f.bin"]
    assert lake.uri("raw/x/f.bin") == (tmp_path / "lake/raw/x/f.bin").as_uri()
    with pytest.raises(ValueError, match="leaves the lake root"):
        lake.uri("../outside")


def test_replace_month_is_exact_and_leaves_other_months(tmp_path, parquet):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    assert wh.replace_month(GREEN, JAN, parquet(JAN, 300)).rows_loaded == 300
    result = wh.replace_month(GREEN, FEB, parquet(FEB, 200))
    assert (result.rows_loaded, result.table_rows, result.table) == (
        200,
        500,
        "nyc_taxi.green_tripdata",
    )
    assert wh.replace_month(GREEN, JAN, parquet(JAN, 120)).table_rows == 320
    assert wh.query(
        "SELECT source_month, count(*) FROM nyc_taxi.green_tripdata GROUP BY 1 ORDER BY 1"
    ) == [(JAN, 120), (FEB, 200)]


def test_failed_load_rolls_back_to_the_previous_month(tmp_path, parquet):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    wh.replace_month(GREEN, JAN, parquet(JAN, 300))
    # A February file offered as January: the check fails inside the transaction.
    with pytest.raises(ValueError, match="200 rows have a source_month other than 2020-01-01"):
        wh.replace_month(GREEN, JAN, parquet(FEB, 200))
    assert wh.query("SELECT count(*) FROM nyc_taxi.green_tripdata") == [(300,)]
    with pytest.raises(duckdb.IOException):
        wh.replace_month(GREEN, JAN, (tmp_path / "missing.parquet").as_uri())
    assert wh.query("SELECT count(*) FROM nyc_taxi.green_tripdata") == [(300,)]


def test_contract_drift_in_an_existing_table_is_refused(tmp_path, parquet):
    path = str(tmp_path / "w.duckdb")
    con = duckdb.connect(path)
    con.execute("CREATE SCHEMA nyc_taxi; CREATE TABLE nyc_taxi.green_tripdata (VendorID DOUBLE)")
    con.close()
    with pytest.raises(RuntimeError, match=r"nyc_taxi.green_tripdata has columns \['VendorID'\]"):
        DuckDBWarehouse(path=path).replace_month(GREEN, JAN, parquet(JAN, 10))


def test_writer_waits_for_another_process_lock(tmp_path, parquet):
    path = str(tmp_path / "w.duckdb")
    uri = parquet(JAN, 50)
    holder = hold_duckdb_lock(path, seconds=3)
    try:
        started = time.monotonic()
        result = DuckDBWarehouse(path=path).replace_month(GREEN, JAN, uri)
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert result.rows_loaded == 50
    assert waited > 1.0, "the write must have waited for the other process to let go"


def test_lock_wait_gives_up_after_its_timeout(tmp_path, parquet):
    path = str(tmp_path / "w.duckdb")
    uri = parquet(JAN, 5)
    holder = hold_duckdb_lock(path, seconds=10)
    try:
        with pytest.raises(WarehouseLocked) as e:
            DuckDBWarehouse(path=path, lock_timeout_seconds=1).replace_month(GREEN, JAN, uri)
        text = str(e.value)
        assert text.startswith(f"{path} stayed locked by another process for 1 s (DUCKDB_LOCK")
        assert f"(PID {holder.pid})" in text  # DuckDB names the holder
        assert text.endswith("then run the month again.")
    finally:
        holder.kill()
        holder.wait()
