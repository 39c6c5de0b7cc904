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


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 22])
def test_a_newline_inside_a_quoted_field_is_part_of_its_record(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(counting, "COUNT_CHUNK", chunk)
    text = b'a,b\n1,"two\nlines"\n2,"say ""hi""\nthere"\n3,plain\n'
    (tmp_path / "q.csv").write_bytes(text)
    assert counting.count_data_rows(tmp_path / "q.csv") == 3


@pytest.mark.parametrize("chunk", [5, 1 << 22])
def test_a_line_over_the_limit_fails_naming_its_line_and_the_limit(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(counting, "COUNT_CHUNK", chunk)
    text = b"a,b\n1,2\n3," + b"x" * 41 + b"\n4,5\n"
    (tmp_path / "long.csv").write_bytes(text)
    counter = counting.DataRowCounter("raw/long.csv", max_line=40)
    with pytest.raises(counting.LimitExceeded) as e:
        for i in range(0, len(text), chunk):
            counter.feed(text[i : i + chunk])
    assert str(e.value) == (
        "raw/long.csv: line 3 is longer than 40 bytes (the limit for one record): not a trip "
        "file, or a field with an unclosed quote"
    )
    assert (e.value.file, e.value.line) == ("raw/long.csv", 3)


def test_an_unterminated_line_over_the_limit_fails_before_it_is_all_read(tmp_path):
    counter = counting.DataRowCounter("raw/zeros.csv", max_line=1000)
    counter.feed(b"a,b\n")
    with pytest.raises(counting.LimitExceeded, match=r"^raw/zeros\.csv: line 2 is longer than"):
        counter.feed(b"0" * 1001)


def test_a_decompression_bomb_fails_naming_the_file_and_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(counting, "INFLATION_FLOOR", 1 << 20)
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"a,b\n" + b"0,0\n" * 2_000_000, 9))
    compressed = bomb.stat().st_size
    limit = max(compressed * counting.MAX_INFLATION, 1 << 20)
    with pytest.raises(counting.LimitExceeded) as e:
        counting.count_data_rows(bomb, "raw/bomb.csv.gz")
    assert str(e.value).startswith(
        f"raw/bomb.csv.gz: inflates to more than {limit:,} bytes (100 times its "
        f"{compressed:,} compressed bytes, at line "
    )
    assert str(e.value).endswith("): a decompression bomb, not a month")
