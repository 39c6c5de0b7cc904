"""Tier 1: what a file is, from its first bytes."""

import gzip

from lake_assets import formats


def test_sniffing(tmp_path):
    assert formats.sniff(gzip.compress(b"a\n")) == formats.GZIP_CSV
    assert formats.sniff(b"PAR1....") == formats.PARQUET
    assert formats.sniff(b"VendorID,") == formats.CSV
    assert formats.sniff(b"") == formats.CSV
    (tmp_path / "x").write_bytes(gzip.compress(b"a\n"))
    assert formats.is_gzip(tmp_path / "x") and formats.of_file(tmp_path / "x") == "csv.gz"
    assert [formats.suffix(k) for k in (formats.GZIP_CSV, formats.PARQUET, formats.CSV)] == [
        ".csv.gz",
        ".parquet",
        ".csv",
    ]
