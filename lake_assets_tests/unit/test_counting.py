"""Tier 1: the independent row count behind the parity check."""

import gzip

import pytest

from lake_assets import counting
from lake_assets.convert import BadInputError


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
    assert counting.count_data_rows(tmp_path / "p.csv") == rows
    assert counting.count_data_rows(tmp_path / "g.csv.gz") == rows


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

    monkeypatch.setattr(counting, "COUNT_CHUNK", chunk)
    rng = random.Random(chunk)
    pieces = [b"1,2", b"\n", b"\r\n", b"\n\n", b"\n\r\n", b"\r", b"x"]
    for i in range(200):
        text = b"a,b\n" + b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        path = tmp_path / f"t{i}.csv"
        path.write_bytes(text)
        assert counting.count_data_rows(path) == _reference_count(text), text


def test_count_of_a_cut_gzip_stream_fails_naming_the_file(tmp_path):
    data = gzip.compress(b"a,b\n" + b"1,2\n" * 50_000)
    (tmp_path / "cut.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError, match=r"^raw/cut\.csv\.gz: gzip stream is cut or corrupt \("):
        counting.count_data_rows(tmp_path / "cut.csv.gz", "raw/cut.csv.gz")


def test_count_matches_the_real_cut_sample(samples):
    # 22,792 complete rows + the cut-off line: the parser's written + rejected.
    assert counting.count_data_rows(samples / "yellow_tripdata_2021-01.sample.csv.gz") == 22793
