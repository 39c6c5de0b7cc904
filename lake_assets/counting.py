"""Rows of a landed file, counted independently of the CSV parser (for the parity check).

No Dagster import. Newlines are found with one vectorized comparison per chunk, so counting
costs little more than reading, or inflating with ISA-L, the bytes.
"""

from __future__ import annotations

import os

from isal import igzip

from lake_assets import formats
from lake_assets.convert.common import MAX_LINE_BYTES, BadInputError, LimitExceeded

COUNT_CHUNK = 1 << 22
# Bounds on untrusted bytes: a real month's gzip inflates about 5 to 10 times; a file that
# inflates past both limits below is a decompression bomb, not a month.
MAX_INFLATION = 100
INFLATION_FLOOR = 1 << 30


class DataRowCounter:
    """CSV records after the header, counted independently of the CSV parser, from the file's
    bytes fed in order.

    A newline inside a quoted field is part of its record, not a new one (quotes are counted
    vectorized per chunk, escaped quotes come in pairs). A last line without a newline (a cut
    file) counts; blank lines (a newline followed by an optional carriage return and another
    newline) do not, as the parser skips them. A record longer than max_line raises
    LimitExceeded naming its line.
    """

    def __init__(self, name: str = "the file", max_line: int = MAX_LINE_BYTES) -> None:
        self.newlines = self.blank = self.offset = 0
        self.last_nl: int | None = None  # absolute position of the last record end seen
        self.last_byte = b""  # the last byte fed so far
        self.in_quotes = False  # whether the bytes fed so far end inside a quoted field
        self.name, self.max_line = name, max_line

    def _record_ends(self, arr) -> object:
        """Positions of the chunk's newlines outside quoted fields."""
        import numpy as np

        nl = np.flatnonzero(arr == 10)
        quotes = np.flatnonzero(arr == 34)
        if quotes.size or self.in_quotes:
            before = np.searchsorted(quotes, nl) + self.in_quotes
            nl = nl[before % 2 == 0]
            self.in_quotes = bool((quotes.size + self.in_quotes) % 2)
        return nl

    def feed(self, chunk: bytes) -> None:
        import numpy as np

        if not chunk:
            return
        arr = np.frombuffer(chunk, dtype=np.uint8)
        nl = self._record_ends(arr)
        start = self.last_nl if self.last_nl is not None else -1
        if nl.size:
            gaps = np.diff(nl)
            self._bound(int(nl[0]) + self.offset - start - 1, self.newlines + 1)
            if gaps.size:
                self._bound(int(gaps.max()) - 1, self.newlines + int(np.argmax(gaps)) + 2)
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
        open_record = self.offset - (self.last_nl if self.last_nl is not None else -1) - 1
        self._bound(open_record, self.newlines + 1)

    def _bound(self, length: int, line: int) -> None:
        """Raises LimitExceeded when the record ending on line is longer than max_line."""
        if length <= self.max_line:
            return
        raise LimitExceeded(
            f"{self.name}: line {line} is longer than {self.max_line:,} bytes (the limit for "
            "one record): not a trip file, or a field with an unclosed quote",
            file=self.name,
            line=line,
        )

    @property
    def rows(self) -> int:
        if not self.offset:
            return 0
        lines = self.newlines + (0 if self.last_byte == b"\n" else 1) - self.blank
        return max(lines - 1, 0)


def inflation_limit(compressed: int) -> int:
    """How many bytes a gzip file of compressed bytes may inflate to before it is a bomb."""
    return max(compressed * MAX_INFLATION, INFLATION_FLOOR)


def count_data_rows(path: str | os.PathLike, name: str | None = None) -> int:
    """DataRowCounter over a plain or gzip CSV file, read in COUNT_CHUNK-byte chunks.

    Raises BadInputError naming the file (name, else path) if the gzip stream is cut or corrupt.
    """
    from isal import isal_zlib

    name = name or str(path)
    counter = DataRowCounter(name)
    gzipped = formats.is_gzip(path)
    limit = inflation_limit(os.path.getsize(path)) if gzipped else None
    with (igzip.open if gzipped else open)(path, "rb") as f:
        while True:
            try:
                chunk = f.read(COUNT_CHUNK)
            except (EOFError, igzip.BadGzipFile, isal_zlib.error) as e:
                raise BadInputError(
                    f"{name}: gzip stream is cut or corrupt ({e})", file=name
                ) from e
            if not chunk:
                return counter.rows
            counter.feed(chunk)
            if limit is not None and counter.offset > limit:
                raise LimitExceeded(
                    f"{name}: inflates to more than {limit:,} bytes ({MAX_INFLATION} times its "
                    f"{os.path.getsize(path):,} compressed bytes, at line {counter.newlines + 1}):"
                    " a decompression bomb, not a month",
                    file=name,
                    line=counter.newlines + 1,
                )


def count_source_rows(path: str | os.PathLike, name: str | None = None) -> int:
    """Rows of a landed file: its Parquet footer, or its non-blank CSV data lines."""
    if formats.of_file(path) == formats.PARQUET:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return count_data_rows(path, name)
