"""Rows of a landed file, counted independently of the CSV parser (for the parity check).

No Dagster import. Newlines are found with one vectorized comparison per chunk, so counting
costs little more than reading, or inflating with ISA-L, the bytes.
"""

from __future__ import annotations

import os

from isal import igzip

from lake_assets import formats
from lake_assets.convert import BadInputError

COUNT_CHUNK = 1 << 22


class DataRowCounter:
    """Non-blank lines after the header, counted independently of the CSV parser, from the
    file's bytes fed in order.

    A last line without a newline (a cut file) counts; blank lines (a newline followed by an
    optional carriage return and another newline) do not, as the parser skips them. Newline
    positions come from one vectorized comparison per chunk, so counting costs little more than
    reading (or decompressing) the bytes.
    """

    def __init__(self) -> None:
        self.newlines = self.blank = self.offset = 0
        self.last_nl: int | None = None  # absolute position of the last newline seen
        self.last_byte = b""  # the last byte fed so far

    def feed(self, chunk: bytes) -> None:
        import numpy as np

        if not chunk:
            return
        arr = np.frombuffer(chunk, dtype=np.uint8)
        nl = np.flatnonzero(arr == 10)
        if nl.size:
            gaps = np.diff(nl)
            self.blank += int(np.count_nonzero(gaps == 1))
            two = nl[:-1][gaps == 2]
            self.blank += int(np.count_nonzero(arr[two + 1] == 13))
            if self.last_nl is not None:
                # The blank line may straddle the previous chunk and this one.
                first, prev = int(nl[0]), self.last_nl - self.offset
                if first - prev == 1:
                    self.blank += 1
                elif first - prev == 2:
                    between = chunk[first - 1 : first] if first >= 1 else self.last_byte
                    self.blank += between == b"\r"
            self.newlines += int(nl.size)
            self.last_nl = self.offset + int(nl[-1])
        self.offset += len(chunk)
        self.last_byte = chunk[-1:]

    @property
    def rows(self) -> int:
        if not self.offset:
            return 0
        lines = self.newlines + (0 if self.last_byte == b"\n" else 1) - self.blank
        return max(lines - 1, 0)


def count_data_rows(path: str | os.PathLike, name: str | None = None) -> int:
    """DataRowCounter over a plain or gzip CSV file, read in COUNT_CHUNK-byte chunks.

    Raises BadInputError naming the file (name, else path) if the gzip stream is cut or corrupt.
    """
    from isal import isal_zlib

    counter = DataRowCounter()
    with (igzip.open if formats.is_gzip(path) else open)(path, "rb") as f:
        while True:
            try:
                chunk = f.read(COUNT_CHUNK)
            except (EOFError, igzip.BadGzipFile, isal_zlib.error) as e:
                name = name or str(path)
                raise BadInputError(
                    f"{name}: gzip stream is cut or corrupt ({e})", file=name
                ) from e
            if not chunk:
                return counter.rows
            counter.feed(chunk)


def count_source_rows(path: str | os.PathLike, name: str | None = None) -> int:
    """Rows of a landed file: its Parquet footer, or its non-blank CSV data lines."""
    if formats.of_file(path) == formats.PARQUET:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return count_data_rows(path, name)
