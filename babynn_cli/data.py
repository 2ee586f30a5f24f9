"""CSV in, arrays out; predictions and histories out. The only module that imports pandas.

How a file is read depends on its size. Below LARGE_FILE_BYTES, pandas reads it whole (its C
reader parses a large enough file on every core); the arrays are views of the frame's values.
That peaks at about three times the data's size, which only matters for large files: those are
split at line boundaries into one part per core, the parts parsed at once by pandas' C reader
(which releases the GIL), a block of rows at a time, each part writing its rows straight into its
own stretch of two preallocated float64 arrays, X (N, m) and Y (N, n). Compressed files and
standard input are read a block of rows at a time by one reader.
"""

from __future__ import annotations

import glob
import io
import itertools
import lzma
import os
import queue
import re
import shutil
import sys
import tarfile
import tempfile
import threading
import warnings
import weakref
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from babynn_cli.core.rows import RowFile
from babynn_cli.errors import DataError, UsageError
from babynn_cli.text import first_line, listing

STDIN = "-"
_GZIP_MAGIC = b"\x1f\x8b"
BLOCK_BYTES = 32 << 20  # text parsed at a time by one reader
LARGE_FILE_BYTES = 256 << 20  # from this size on, a plain file is read in parts
SLACK = 1.05  # room reserved per part beyond its estimated rows
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")


@dataclass(frozen=True)
class Dataset:
    """X: (N, m) features, Y: (N, n) targets, float64, with their column names."""

    X: np.ndarray
    Y: np.ndarray
    features: list[str]
    targets: list[str]


SAMPLE = "sample:"  # DATA written sample:NAME reads one of the samples that ship with babynn
SAMPLES = {
    "notes_example": "the notes' example: x0, x1, x2 → y, 200 rows, a linear rule plus noise",
    "two_outputs": "a, b, c, d → y1, y2, 300 rows: one affine map, two outputs",
    "nonlinear": "x0, x1 → y, 1000 rows: sin(x0) + x1², no line can follow it",
    "diabetes": "10 measurements of 442 patients → disease progression a year later (real data)",
}


def sample_text(name: str) -> bytes:
    """The CSV of the sample called `name` (see SAMPLES), as shipped inside the package."""
    from importlib.resources import files

    if name not in SAMPLES:
        raise DataError(f"no sample '{name}': the samples are {', '.join(SAMPLES)}")
    try:  # an installed babynn: sample_data/ ships inside it as babynn_cli.samples
        return (files("babynn_cli.samples") / f"{name}.csv").read_bytes()
    except ModuleNotFoundError:  # a checkout (or an editable install): sample_data/ beside it
        return (Path(__file__).resolve().parent.parent / "sample_data" / f"{name}.csv").read_bytes()


def display_name(source: str) -> str:
    if source.startswith(SAMPLE):
        return f"the sample {source.removeprefix(SAMPLE)}"
    return "standard input" if source == STDIN else f"'{source}'"


@dataclass(frozen=True)
class Source:
    """An opened CSV: a path, or the bytes read from standard input."""

    label: str
    sep: str
    path: Path | None = None
    raw: bytes | None = None

    @property
    def name(self) -> str:
        return display_name(self.label)

    @property
    def compression(self) -> str | None:
        if self.raw is not None:
            return "gzip" if self.raw.startswith(_GZIP_MAGIC) else None
        return "infer"

    def handle(self) -> Any:
        return io.BytesIO(self.raw) if self.raw is not None else self.path

    @property
    def plain_file(self) -> bool:
        return self.path is not None and self.path.suffix.lower() not in _COMPRESSED

    @property
    def parquet(self) -> bool:
        return self.path is not None and self.path.suffix.lower() == ".parquet"

    def splittable(self) -> bool:
        """A plain local file large enough to be parsed in parts."""
        return (
            self.plain_file
            and not self.parquet
            and len(self.sep) == 1
            and self.path.stat().st_size >= LARGE_FILE_BYTES  # type: ignore[union-attr]
            and (os.cpu_count() or 1) > 1
        )


def open_source(source: str, sep: str = ",") -> Source:
    """The CSV at `source`. Standard input, a pipe (`<(cat f)`), a FIFO or a device can be read
    only once: their bytes are read now, and parsed from memory."""
    if source == STDIN:
        return Source(source, sep, raw=sys.stdin.buffer.read())
    if source.startswith(SAMPLE):
        return Source(source, sep, raw=sample_text(source.removeprefix(SAMPLE)))
    path = Path(source)
    name = display_name(source)
    if not path.exists():
        raise DataError(f"cannot read {name}: no such file")
    if path.is_dir():
        raise DataError(f"cannot read {name}: it is a directory")
    if not path.is_file():
        try:
            return Source(source, sep, raw=path.read_bytes())
        except OSError as e:
            raise DataError(f"cannot read {name}: {e.strerror}") from None
    return Source(source, sep, path=path)


def read_header(src: Source) -> list[str]:
    """The column names; an error for an empty file or duplicate names."""
    if src.parquet:
        with _reading(src):
            cells: list[Any] = _pyarrow_parquet().read_schema(src.path).names
    else:
        with _reading(src):
            first = pd.read_csv(
                src.handle(),
                sep=src.sep,
                header=None,
                nrows=1,
                dtype=str,
                compression=src.compression,
            )
        cells = first.iloc[0].tolist()
    names = ["" if pd.isna(c) else str(c).strip() for c in cells]  # ' a ' is column 'a'
    for k, name in enumerate(names, start=1):
        if not name or name.startswith("Unnamed: "):
            raise DataError(
                f"column {k} of {src.name} has no name in the header (a saved index? name the "
                "column or drop it)"
            )
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise DataError(f"{src.name} has duplicate column names: {listing(dupes)}")
    return names


def choose_columns(
    header: list[str], name: str, targets: list[str] | None, features: list[str] | None
) -> tuple[list[str], list[str]]:
    """(features, targets): targets default to the last column, features to all the others."""
    targets = list(targets) if targets else [header[-1]]
    for col in targets:
        _require_column(col, header, name)
    if features:
        for col in features:
            _require_column(col, header, name)
        both = [c for c in features if c in targets]
        if both:
            raise UsageError(f"column '{both[0]}' is named both as a target and as a feature")
    else:
        features = [c for c in header if c not in targets]
    if not features:
        raise DataError(f"{name} has no feature columns besides the target {', '.join(targets)}")
    for group in (targets, features):
        dupes = sorted({c for c in group if group.count(c) > 1})
        if dupes:
            raise UsageError(f"column '{dupes[0]}' is named twice")
    return features, targets


_GLOB = re.compile(r"[*?\[]")
_PART_SUFFIXES = (".csv", *(f".csv{z}" for z in _COMPRESSED), ".tsv", ".txt", ".parquet")


def source_parts(source: str) -> list[str]:
    """The files that make up `source`: itself; or, for a folder, its CSV and Parquet files
    (.csv, .csv.gz, …, .parquet); or, for a glob pattern ('data/*.csv', quoted so the shell
    leaves it), its matches; in name order."""
    if source == STDIN or source.startswith(SAMPLE):
        return [source]
    path = Path(source)
    if path.is_dir():
        parts = sorted(str(p) for p in path.iterdir() if p.name.lower().endswith(_PART_SUFFIXES))
        if not parts:
            raise DataError(
                f"cannot read {display_name(source)}: a folder with no CSV or Parquet files"
            )
        return parts
    if not path.exists() and _GLOB.search(source):
        parts = sorted(glob.glob(source))
        if not parts:
            raise DataError(f"no file matches {display_name(source)}")
        return parts
    return [source]


@contextmanager
def _in_part(name: str, several: bool) -> Iterator[None]:
    """A DataError about a part names the part, when there are several."""
    try:
        yield
    except DataError as e:
        if several and not str(e).startswith(name):
            raise DataError(f"{name}: {e}") from None
        raise


def _read_parts(
    source: str, sep: str, pick: Callable[[list[str], str], _Columns]
) -> tuple[list[str], np.ndarray, np.ndarray, _Columns]:
    """Every part of `source`, its header checked against the first part's, its columns (chosen
    by `pick` from the header) read and stacked."""
    parts = source_parts(source)
    several = len(parts) > 1
    header: list[str] | None = None
    blocks = []
    columns: _Columns | None = None
    for part in parts:
        src = open_source(part, sep)
        with _in_part(src.name, several):
            names = read_header(src)
            if header is None:
                header, columns = names, pick(names, src.name if not several else source)
            elif names != header:
                raise DataError(
                    f"{src.name} has the columns {listing(names)}; the first part has "
                    f"{listing(header)}: every part must share the header"
                )
            assert columns is not None
            blocks.append(read_columns(src, names, columns))
    assert header is not None and columns is not None
    if not several:
        return header, blocks[0][0], blocks[0][1], columns
    X = np.concatenate([b[0] for b in blocks])
    Y = np.concatenate([b[1] for b in blocks])
    return header, X, Y, columns


def load(
    source: str,
    sep: str = ",",
    targets: list[str] | None = None,
    features: list[str] | None = None,
    dropna: bool = False,
) -> Dataset:
    """Features and targets of the CSV at `source` ('-' for standard input; a folder or a glob
    pattern for several parts with one header)."""
    chosen: list[list[str]] = []

    def pick(header: list[str], name: str) -> _Columns:
        f, t = choose_columns(header, name, targets, features)
        chosen[:] = [f, t]
        return _Columns(f, t, dropna)

    _, X, Y, _ = _read_parts(source, sep, pick)
    return Dataset(X=X, Y=Y, features=chosen[0], targets=chosen[1])


def load_for_prediction(
    source: str, sep: str, features: list[str], targets: list[str]
) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """The model's feature columns, and its target columns when the data has them all, usable:
    (X, Y or None, why the targets cannot score the predictions, when they are there but not
    numbers)."""
    has_targets = False

    def pick(header: list[str], name: str) -> _Columns:
        nonlocal has_targets
        missing = [c for c in features if c not in header]
        if missing:
            raise DataError(f"{name} lacks the model's feature column(s): {listing(missing)}")
        has_targets = all(t in header for t in targets)
        return _Columns(features, targets if has_targets else [], None, optional_targets=True)

    _, X, Y, columns = _read_parts(source, sep, pick)
    if not has_targets or columns.targets_unusable:
        return X, None, columns.targets_unusable
    return X, Y, None


def read_columns(
    src: Source, header: list[str], columns: _Columns
) -> tuple[np.ndarray, np.ndarray]:
    """X (N, m) and Y (N, n) of `columns`, checked: numeric, finite, nothing missing.

    With columns.dropna True rows with a missing value are dropped; None means the command has
    no --dropna.
    Rows are numbered from 1, the first row after the header. Every column is parsed, used or
    not, so that a row with too many fields is an error rather than quietly cut short.
    """
    if src.parquet:
        with _reading(src):
            parts = list(_checked_parts(_parquet_frames(src, columns.used), columns))
        if not sum(p.seen for p in parts):
            raise DataError(f"{src.name} has no rows")
        return _checked(_stacked(parts), src)
    if src.splittable():
        try:
            with _reading(src):
                arrays = _read_in_parts(src, header, columns)
        except _Unsplittable:
            arrays = None
        if arrays is not None:
            return _checked(arrays, src)
    whole = src.plain_file  # a small plain file: pandas reads it whole, fastest
    with _reading(src):
        reader = pd.read_csv(
            src.handle(),
            sep=src.sep,
            header=0,
            names=header,
            index_col=False,  # a row with a field too many is an error, never shifted a column
            chunksize=None if whole else _rows_per_block(len(header)),
            compression=src.compression,
        )
        parts = list(_checked_parts([reader] if whole else reader, columns))
    if not sum(p.seen for p in parts):
        raise DataError(f"{src.name} has a header but no rows")
    return _checked(_stacked(parts), src)


def _checked_parts(frames: Iterable[pd.DataFrame], columns: _Columns) -> Iterator[_Part]:
    """Each frame's rows checked; a DataError for the first problem, rows counted from the
    first frame's first row (1)."""
    seen = 0
    for frame in frames:
        part = columns.absorb(frame)
        if part.problem is not None:
            raise DataError(part.problem.format(row=seen + part.problem_row + 1))
        seen += part.seen
        yield part


def _stacked(parts: list[_Part]) -> tuple[np.ndarray, np.ndarray]:
    if len(parts) == 1:
        return parts[0].X, parts[0].Y
    return np.concatenate([p.X for p in parts]), np.concatenate([p.Y for p in parts])


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet
    except ImportError:
        raise UsageError(
            "reading Parquet needs pyarrow, which is not installed: pip install 'babynn[dask]'"
        ) from None
    return pyarrow.parquet


def _parquet_frames(src: Source, used: list[str]) -> Iterator[pd.DataFrame]:
    """A Parquet file's `used` columns, STREAM_BLOCK_ROWS rows at a time."""
    file = _pyarrow_parquet().ParquetFile(src.path)
    for batch in file.iter_batches(batch_size=STREAM_BLOCK_ROWS, columns=used):
        yield batch.to_pandas()


STREAM_BLOCK_ROWS = 1 << 16  # rows parsed at a time when streaming


@dataclass(frozen=True)
class Stream:
    """A source read in blocks, never whole: its columns, and `blocks()` for each pass."""

    features: list[str]
    targets: list[str]
    blocks: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]
    bytes: int  # of the source's files, for what the header says
    cache: _BlockCache

    def cached_rows(self) -> RowFile:
        """After a first pass: the file holding its rows, for minibatches, which read them in
        shuffled blocks."""
        return self.cache.row_file()


def stream(
    source: str,
    sep: str = ",",
    targets: list[str] | None = None,
    features: list[str] | None = None,
    dropna: bool = False,
    cache_dir: str | None = None,
) -> Stream:
    """`source` (a file, a folder or a glob of parts) as blocks of checked rows, read again at
    each pass: memory holds one block at a time. Standard input, read once, cannot stream. The
    first pass keeps a binary copy of the rows in a temporary folder inside `cache_dir` (the
    system's temporary folder by default), removed with the stream."""
    if source == STDIN:
        raise DataError("standard input can be read only once: --stream needs a file")
    parts = source_parts(source)
    first = open_source(parts[0], sep)
    header = read_header(first)
    name = first.name if len(parts) == 1 else display_name(source)
    chosen_features, chosen_targets = choose_columns(header, name, targets, features)
    columns = _Columns(chosen_features, chosen_targets, dropna)

    def parse() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        total = 0
        for path in parts:
            src = open_source(path, sep)
            with _in_part(src.name, len(parts) > 1):
                names = read_header(src)
                if names != header:
                    raise DataError(
                        f"{src.name} has the columns {listing(names)}; the first part has "
                        f"{listing(header)}: every part must share the header"
                    )
                for X, Y in _blocks(src, header, columns):
                    total += len(X)
                    yield X, Y
        if total == 0:
            raise DataError(f"{name} has no rows to train on")

    size = sum(os.path.getsize(p) for p in parts if os.path.isfile(p))
    cache = _BlockCache(len(chosen_features), cache_dir)
    return Stream(chosen_features, chosen_targets, cache.wrap(parse), size, cache)


class _BlockCache:
    """The checked rows of a stream's first pass, written as raw float64 to a temporary file, so
    that later passes read them back block by block instead of parsing the CSV again. The file is
    removed when the cache is (or when the process ends)."""

    def __init__(self, m: int, under: str | None = None) -> None:
        self.m = m
        try:
            folder = tempfile.mkdtemp(prefix="babynn-stream-", dir=under)
        except OSError as e:
            where = under if under is not None else tempfile.gettempdir()
            raise DataError(f"cannot keep the stream's cache in '{where}': {e.strerror}") from None
        self.path = Path(folder) / "rows.f64"
        self.width = 0
        self.complete = False
        weakref.finalize(self, shutil.rmtree, folder, True)

    def wrap(
        self, parse: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]
    ) -> Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]:
        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            if self.complete:
                yield from self._read()
                return
            # the rows are written by a second thread while the next block is parsed
            pending: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=4)
            failed: list[BaseException] = []

            def write() -> None:
                with open(self.path, "wb") as f:
                    while (block := pending.get()) is not None:
                        try:
                            block.tofile(f)
                        except OSError as e:  # a full disk: the next pass parses again
                            failed.append(e)

            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            try:
                for X, Y in parse():
                    self.width = X.shape[1] + Y.shape[1]
                    pending.put(np.hstack([X, Y]))
                    yield X, Y
            finally:
                pending.put(None)
                writer.join()
            self.complete = not failed

        return blocks

    def row_file(self) -> RowFile:
        if not self.complete:
            raise DataError(
                f"cannot keep a copy of the rows in {self.path.parent} (is the disk full?): "
                "minibatches read from it; choose another folder with --cache DIR"
            )
        rows = self.path.stat().st_size // (8 * self.width)
        return RowFile(str(self.path), rows, self.width)

    def _read(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        block = STREAM_BLOCK_ROWS * self.width
        with open(self.path, "rb") as f:
            while True:
                Z = np.fromfile(f, count=block).reshape(-1, self.width)
                if not len(Z):
                    return
                yield Z[:, : self.m], Z[:, self.m :]


def _blocks(
    src: Source, header: list[str], columns: _Columns
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One source's rows, STREAM_BLOCK_ROWS at a time, checked as `read_columns` checks them."""
    with _reading(src):
        if src.parquet:
            frames: Iterable[pd.DataFrame] = _parquet_frames(src, columns.used)
        else:
            frames = pd.read_csv(
                src.handle(),
                sep=src.sep,
                header=0,
                names=header,
                index_col=False,
                chunksize=STREAM_BLOCK_ROWS,
                compression=src.compression,
            )
        for part in _checked_parts(frames, columns):
            if len(part.X):
                yield part.X, part.Y


def checked_frame(
    frame: pd.DataFrame, features: list[str], targets: list[str], dropna: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Rows parsed elsewhere (a partition on a Dask worker), checked as streamed blocks are; a
    DataError for the first bad row, counted from the frame's first row."""
    part = _Columns(features, targets, dropna).absorb(frame)
    if part.problem is not None:
        raise DataError(part.problem.format(row=f"{part.problem_row + 1} of a partition"))
    return part.X, part.Y


def first_problem(
    parts: list[str], sep: str, features: list[str], targets: list[str], dropna: bool
) -> str | None:
    """The first bad cell of the parts, named by part file and row, as `stream` would report it;
    None when every row is good. For errors found elsewhere (a cluster), found again here."""
    columns = _Columns(features, targets, dropna)
    try:
        for path in parts:
            src = open_source(path, sep)
            with _in_part(src.name, len(parts) > 1):
                for _ in _blocks(src, read_header(src), columns):
                    pass
    except DataError as e:
        return str(e)
    return None


def _checked(arrays: tuple[np.ndarray, np.ndarray], src: Source) -> tuple[np.ndarray, np.ndarray]:
    X, Y = arrays
    if len(X) == 0:
        raise DataError(f"every row of {src.name} has a missing value")
    return X, Y


@dataclass
class _Part:
    """One block of parsed rows: the rows kept, how many were read, the first problem found."""

    X: np.ndarray
    Y: np.ndarray
    seen: int
    problem: str | None = None  # a message with {row} for the row number
    problem_row: int = 0  # 0-based within the block


class _Columns:
    """What to take from each block of parsed rows, and the checks each must pass."""

    def __init__(
        self,
        features: list[str],
        targets: list[str],
        dropna: bool | None,
        optional_targets: bool = False,
    ) -> None:
        self.features, self.targets, self.dropna = features, targets, dropna
        self.used = features + targets
        # predict: targets only score the predictions; unusable ones are noted, not errors
        self.optional_targets = optional_targets
        self.targets_unusable: str | None = None

    def absorb(self, chunk: pd.DataFrame) -> _Part:
        m = len(self.features)
        for col in self.used:
            problem = _non_numeric(chunk[col], col)
            if problem is not None and self.optional_targets and col in self.targets:
                self.targets_unusable = self.targets_unusable or f"column '{col}' is not numeric"
                chunk = chunk.assign(**{col: pd.to_numeric(chunk[col], errors="coerce")})
            elif problem is not None:
                row, message = problem
                return _Part(np.empty((0, m)), np.empty((0, len(self.targets))), 0, message, row)
        if list(chunk.columns) == self.used:
            values = chunk.to_numpy(dtype=np.float64)
        else:
            values = chunk[self.used].to_numpy(dtype=np.float64)
        seen = len(values)
        if np.isfinite(values).all():  # the usual case: one pass, nothing to report
            return _Part(values[:, :m], values[:, m:], seen)
        if self.optional_targets and not np.isfinite(values[:, m:]).all():
            self.targets_unusable = self.targets_unusable or "the targets have missing values"
            if np.isfinite(values[:, :m]).all():
                return _Part(values[:, :m], values[:, m:], seen)
        missing, infinite = np.isnan(values), np.isinf(values)
        if self.optional_targets:  # only the features decide
            missing[:, m:] = infinite[:, m:] = False
        bad_rows = infinite.any(axis=1) if self.dropna else (missing | infinite).any(axis=1)
        if bad_rows.any():  # the first problem in row order
            row = int(np.argmax(bad_rows))
            if infinite[row].any():
                col = self.used[int(np.argmax(infinite[row]))]
                message = f"column '{col}' has an infinite value in row {{row}}"
            else:
                col = self.used[int(np.argmax(missing[row]))]
                hint = (
                    ""
                    if self.dropna is None
                    else "; pass --dropna to drop rows with missing values"
                )
                message = f"column '{col}' has a missing value in row {{row}}{hint}"
            return _Part(values[:0, :m], values[:0, m:], seen, message, row)
        kept = ~missing.any(axis=1)  # --dropna: rows with a missing value go
        return _Part(values[kept, :m], values[kept, m:], seen)


class _Unsplittable(Exception):
    """The file could not be parsed in parts; it is read as one."""


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


def _read_in_parts(
    src: Source, header: list[str], columns: _Columns
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
            raise _Unsplittable
        parts = min(os.cpu_count() or 1, 8)
        cuts = [start]
        for i in range(1, parts):
            at = start + (size - start) * i // parts
            nl = os.pread(fd, 1 << 20, at).find(b"\n")
            if nl < 0:
                raise _Unsplittable
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
                reader = pd.read_csv(
                    io.BufferedReader(_ByteRange(fd, lo, hi), 1 << 20),
                    sep=src.sep,
                    header=None,
                    names=header,
                    index_col=False,
                    chunksize=rows_per_block,
                )
                for chunk in reader:
                    part = columns.absorb(chunk)
                    if part.problem is not None:
                        results[i] = (kept, seen, part.problem, seen + part.problem_row)
                        return
                    rows = len(part.X)
                    if base + kept + rows > limit:
                        raise _Unsplittable  # more rows than the part's stretch holds
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
        if isinstance(failure[0], _Unsplittable | pd.errors.ParserError | pd.errors.ParserWarning):
            raise _Unsplittable
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


def _rows_per_block(n_columns: int) -> int:
    """Rows in about BLOCK_BYTES of text, at a guess of 12 characters a field."""
    return max(1024, BLOCK_BYTES // (12 * max(1, n_columns)))


@contextmanager
def _reading(src: Source) -> Iterator[None]:
    """Turn pandas' and the file system's errors into one-line DataErrors."""
    name = src.name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            yield
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty") from None
    except pd.errors.ParserWarning:  # (an error here) the first row has a field too many
        raise DataError(f"row 1 of {name} has more fields than its header") from None
    except pd.errors.ParserError as e:
        fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
        if fields:
            header, line, saw = (int(g) for g in fields.groups())
            raise DataError(
                f"row {line - 1} of {name} has {saw} fields; the header has {header}"
            ) from None
        raise DataError(f"cannot parse {name}: {first_line(e)}") from None
    except UnicodeDecodeError:
        raise DataError(f"cannot read {name}: it is not UTF-8 text") from None
    except ImportError as e:  # .zst without its package
        raise DataError(f"cannot read {name}: {first_line(e)}") from None
    except (
        OSError,
        EOFError,
        ValueError,
        zipfile.BadZipFile,
        lzma.LZMAError,
        tarfile.TarError,
    ) as e:
        # permission denied, a damaged .gz, a zip with no member or several ...
        reason = e.strerror if isinstance(e, OSError) and e.strerror else first_line(e)
        raise DataError(f"cannot read {name}: {reason}") from None


def table_csv(columns: Mapping[str, Iterable[Any]]) -> str:
    """A CSV text with these columns, every float in full precision."""
    return str(pd.DataFrame(columns).to_csv(index=False, lineterminator="\n"))


def _require_column(col: str, columns: list[str], name: str) -> None:
    if col not in columns:
        raise DataError(f"no column '{col}' in {name} (columns: {listing(columns)})")


def _non_numeric(series: pd.Series, col: str) -> tuple[int, str] | None:
    """(row within the block, message with {row}) when the column is not numbers."""
    if series.dtype.kind in "iuf":
        return None
    if series.dtype.kind == "b":  # True/False are not measurements
        bad = series.notna().to_numpy()
    else:
        bad = (pd.to_numeric(series, errors="coerce").isna() & series.notna()).to_numpy()
        if not bad.any():
            return None  # numbers pandas kept as text: they convert
    row = int(np.argmax(bad))
    value = str(series.iloc[row])
    return row, f"column '{col}' is not numeric: row {{row}} holds {value!r}"
