import gzip
from datetime import date

from lake_dev import generator


def _lines(path):
    with gzip.open(path, "rt", newline="") as f:
        return f.read().split("\n")


def test_same_inputs_same_bytes(tmp_path):
    a = generator.write_month("yellow", date(2021, 1, 1), 1000, tmp_path / "a.csv.gz")
    b = generator.write_month("yellow", date(2021, 1, 1), 1000, tmp_path / "b.csv.gz")
    c = generator.write_month("yellow", date(2021, 2, 1), 1000, tmp_path / "c.csv.gz")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_row_counts_and_headers(tmp_path):
    for service, header in generator.HEADERS.items():
        path = generator.write_month(service, date(2019, 1, 1), 600, tmp_path / f"{service}.csv.gz")
        lines = _lines(path)
        assert lines[0] == ",".join(header)
        assert lines[-1] == ""  # LF-terminated, no partial last row
        assert len(lines) - 2 == 600
        assert all(line.count(",") == len(header) - 1 for line in lines[1:-1])


def test_rows_span_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(generator, "CHUNK_ROWS", 70)
    path = generator.write_month("fhv", date(2020, 5, 1), 200, tmp_path / "f.csv.gz")
    assert len(_lines(path)) - 2 == 200


def test_era_quirks(tmp_path):
    green = _lines(generator.write_month("green", date(2019, 1, 1), 300, tmp_path / "g.csv.gz"))
    # congestion_surcharge is empty in 2019-01, so every green row ends with a trailing comma.
    assert all(line.endswith(",") for line in green[1:-1])
    yellow = _lines(generator.write_month("yellow", date(2020, 6, 1), 3000, tmp_path / "y.csv.gz"))
    rows = [line.split(",") for line in yellow[1:-1]]
    assert any(r[0] == "" for r in rows), "2020+ months have rows with no VendorID"
    assert any(r[1][:7] != "2020-06" for r in rows), "some pickups fall outside the month"
    assert any(float(r[16]) < 0 for r in rows), "refunds carry negative totals"


def test_zone_lookup_is_crlf_quoted_with_265_zones(tmp_path):
    data = generator.write_zones(tmp_path / "z.csv").read_bytes()
    lines = data.split(b"\r\n")
    assert lines[0] == b'"LocationID","Borough","Zone","service_zone"'
    assert len(lines) - 2 == 265
    assert lines[-2] == b'265,"Unknown","NA","N/A"'
