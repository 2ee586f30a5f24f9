"""The parallel reader of large plain files: split at line boundaries into one part per core,
the parts parsed at once by pandas' C reader (which releases the GIL), a block of rows at a time,
each part writing its rows straight into its own stretch of two preallocated float64 arrays."""

from __future__ import annotations

import io
import itertools
import os
import threading
from typing import Any

import numpy as np
import pandas as pd

from babynn_cli.data.columns import Columns
from babynn_cli.data.sources import Source, csv_frames
from babynn_cli.errors import DataError

BLOCK_BYTES = 32 << 20  # text parsed at a time by one reader
LARGE_FILE_BYTES = 256 << 20  # from this size on, a plain file is read in parts
SLACK = 1.05  # room reserved per part beyond its estimated rows


class Unsplittable(Exception):
    """The file could not be parsed in parts; it is read as one."""


def splittable(src: Source) -> bool:
    """A plain local file large enough to be parsed in parts."""
    return (
        src.plain_file
        and not src.parquet
        and len(src.sep) == 1
        and src.path.stat().st_size >= LARGE_FILE_BYTES  # type: ignore[union-attr]
        and (os.cpu_count() or 1) > 1
    )


class _ByteRange(io.RawIOBase):
    """Bytes lo..hi of a file, read with pread (which releases the GIL)."""

    def __init__(self, fd: int, lo: int, hi: int) -> None:
        self.fd, self.pos, self.hi = fd, lo, hi

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.hi - self.pos)
        if n <= 0:
            return 0
        data = os.pread(self.fd, n, self.pos)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def read_in_parts(
    src: Source, header: list[str], columns: Columns
) -> tuple[np.ndarray, np.ndarray] | None:
    """Parse the file's data in one part per core, straight into preallocated X and Y.

    Each part gets a stretch of rows sized from its bytes (with SLACK); afterwards the stretches
    are moved together. None when the file turns out to need the one-reader path after all.
    """
    assert src.path is not None
    fd = os.open(src.path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        head = os.pread(fd, 1 << 20, 0)
        start = head.find(b"\n") + 1
        if start <= 0 or b"\r" in head or b'"' in head:
            raise Unsplittable
        parts = min(os.cpu_count() or 1, 8)
        cuts = [start]
        for i in range(1, parts):
            at = start + (size - start) * i // parts
            nl = os.pread(fd, 1 << 20, at).find(b"\n")
            if nl < 0:
                raise Unsplittable
            cuts.append(max(at + nl + 1, cuts[-1]))
        cuts.append(size)
        ranges = list(itertools.pairwise(cuts))
        row_bytes = _bytes_per_row(head[start:])
        slots = [int((hi - lo) / row_bytes * SLACK) + 1024 for lo, hi in ranges]
        offsets = np.concatenate([[0], np.cumsum(slots)]).astype(int)
        m, n = len(columns.features), len(columns.targets)
        X = np.empty((int(offsets[-1]), m))
        Y = np.empty((int(offsets[-1]), n))
        rows_per_block = max(1024, int(BLOCK_BYTES / row_bytes))
        results: list[tuple[int, int, str | None, int] | None] = [None] * len(ranges)
        failure: list[BaseException] = []

        def work(i: int) -> None:
            lo, hi = ranges[i]
            base, limit = int(offsets[i]), int(offsets[i + 1])
            kept = seen = 0
            try:
                text = io.BufferedReader(_ByteRange(fd, lo, hi), 1 << 20)
                reader = csv_frames(text, src.dialect, header, rows_per_block, has_header=False)
                for chunk in reader:
                    part = columns.absorb(chunk)
                    if part.problem is not None:
                        results[i] = (kept, seen, part.problem, seen + part.problem_row)
                        return
                    rows = len(part.X)
                    if base + kept + rows > limit:
                        raise Unsplittable  # more rows than the part's stretch holds
                    X[base + kept : base + kept + rows] = part.X
                    Y[base + kept : base + kept + rows] = part.Y
                    kept += rows
                    seen += part.seen
                results[i] = (kept, seen, None, 0)
            except pd.errors.EmptyDataError:
                results[i] = (0, 0, None, 0)
            except BaseException as e:  # reported in the caller's thread
                failure.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(ranges))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        os.close(fd)
    if failure:
        if isinstance(failure[0], Unsplittable | pd.errors.ParserError | pd.errors.ParserWarning):
            raise Unsplittable
        raise failure[0]
    seen_before = 0
    for result in results:
        assert result is not None
        kept, seen, problem, row = result
        if problem is not None:
            raise DataError(problem.format(row=seen_before + row + 1))
        seen_before += seen
    total = 0
    for i, result in enumerate(results):  # move the stretches together, in order
        kept = result[0]  # type: ignore[index]
        src_lo = int(offsets[i])
        if src_lo != total:
            for lo in range(0, kept, 1 << 16):
                hi = min(kept, lo + (1 << 16))
                X[total + lo : total + hi] = X[src_lo + lo : src_lo + hi]
                Y[total + lo : total + hi] = Y[src_lo + lo : src_lo + hi]
        total += kept
    if total == 0:
        if seen_before == 0:
            raise DataError(f"{src.name} has a header but no rows")
        return X[:0], Y[:0]
    X.resize((total, m), refcheck=False)  # give back the unused rows
    Y.resize((total, n), refcheck=False)
    return X, Y


def _bytes_per_row(sample: bytes) -> float:
    lines = sample.split(b"\n")[:-1] or [sample]
    return max(1.0, sum(len(line) + 1 for line in lines) / len(lines))
