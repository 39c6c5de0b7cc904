"""A reader polling the lake file and the warehouse table while the month is replaced again and
again never sees a torn file or a missing month: each look finds the old rows or the new."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from lake_assets_tests.helpers import trip_selection

pytestmark = pytest.mark.faults

READER = r"""
import json, os, sys, time
from datetime import date
import duckdb, pyarrow.parquet as pq
parquet, db, stop = sys.argv[1], sys.argv[2], sys.argv[3]
seen = {"lake": [], "warehouse": [], "lake_errors": [], "locked": 0}
end = time.monotonic() + 600
while time.monotonic() < end and not os.path.exists(stop):
    try:
        # The whole file, not only its footer: a torn file fails to read. Opened once, as a
        # reader of a renamed-into-place file must: pq.read_table(path) stats the path and opens
        # it again, and between the two a rename can swap the file, so the size it expects is the
        # old file's while it reads the new one.
        with open(parquet, "rb") as handle:
            seen["lake"].append(pq.read_table(handle).num_rows)
    except FileNotFoundError as e:
        seen["lake_errors"].append(f"missing: {e}")
    except Exception as e:
        seen["lake_errors"].append(f"{type(e).__name__}: {e}")
    try:
        con = duckdb.connect(db, read_only=True)
    except duckdb.IOException:
        seen["locked"] += 1  # a writer holds the file: DuckDB admits no reader meanwhile
    else:
        try:
            seen["warehouse"].append(con.execute(
                "SELECT count(*) FROM nyc_taxi.green_tripdata WHERE source_month = ?",
                [date(2021, 5, 1)]).fetchone()[0])
        finally:
            con.close()
    time.sleep(0.02)
print(json.dumps(seen))
"""


def test_a_reader_never_sees_a_torn_file_or_a_missing_month(stack):
    sizes = [1000, 2000, 1000, 2000]
    stack.publish("green", "2021-05", sizes[0])
    code, out = stack.run(trip_selection("green"), "2021-05")
    assert code == 0, out[-3000:]
    parquet = stack.lake / "lake/green_tripdata/green_tripdata_2021-05.parquet"
    stop = stack.root / "stop-reading"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(parquet), str(stack.duckdb_path), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for rows in sizes[1:]:
            time.sleep(0.5)
            stack.publish("green", "2021-05", rows)
            code, out = stack.run(trip_selection("green"), "2021-05")
            assert code == 0, out[-3000:]
            assert stack.lake_rows("green", "2021-05") == rows
    finally:
        stop.touch()
    seen_text, _ = reader.communicate(timeout=60)
    seen = json.loads(seen_text) if seen_text else None
    assert seen is not None, "the reader printed nothing"
    assert seen["lake_errors"] == []
    assert set(seen["lake"]) == {1000, 2000}
    assert set(seen["warehouse"]) <= {1000, 2000} and seen["warehouse"]
    print(
        f"reader: {len(seen['lake'])} lake reads, {len(seen['warehouse'])} warehouse reads, "
        f"{seen['locked']} times locked out, never torn or missing"
    )
