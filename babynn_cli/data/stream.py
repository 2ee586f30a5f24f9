"""Streams: DATA read in blocks, never whole, again at each pass (`stream`). The first pass also
writes the checked rows to the stream's row file (`RowFileWriter`): later passes read them back
from it instead of parsing again, and minibatches read it in shuffled blocks (`core.rows.RowFile`).
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from babynn_cli.core.encoding import Encoding
from babynn_cli.core.rows import RowFile
from babynn_cli.data.columns import (
    Columns,
    Reading,
    Roles,
    checked_parts,
    open_parts,
    read_header,
    same_header,
)
from babynn_cli.data.encoding import Learner, checked_classes, kind_of, labels_of
from babynn_cli.data.read import Wanted
from babynn_cli.data.sources import (
    SAMPLE,
    STDIN,
    Dialect,
    Source,
    csv_frames,
    display_name,
    in_part,
    open_source,
    parquet_frames,
    reading,
    source_parts,
)
from babynn_cli.errors import DataError

STREAM_BLOCK_ROWS = 1 << 16  # rows parsed at a time when streaming
Blocks = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]
# watch(pass, rows the pass will read (None: not known yet)) → a context that is told the rows
# read so far, and is left when the pass ends (with its rows and seconds): how a caller shows
# each pass without the data layer knowing how
Watch = Callable[[int, int | None], AbstractContextManager[Callable[[int], None]]]


@dataclass(frozen=True)
class Stream:
    """A source read in blocks, never whole: its columns, and `blocks()` for each pass."""

    features: list[str]
    targets: list[str]
    blocks: Blocks
    writer: RowFileWriter
    encoding: Encoding
    first_pass: Callable[[], Reading]  # how the first pass read the rows, once it has
    classes: tuple[str, ...] | None = None  # the target's classes, when it holds them

    @property
    def reading(self) -> Reading:
        return self.first_pass()

    def row_file(self) -> RowFile:
        """After a first pass: the stream's row file, for minibatches, which read it in shuffled
        blocks."""
        return self.writer.row_file()


def stream(
    source: str,
    dialect: Dialect | str = ",",
    wanted: Wanted | None = None,
    cache_dir: str | None = None,
    watch: Watch | None = None,
) -> Stream:
    """`source` (a file, a folder or a glob of parts) as blocks of checked rows, read again at
    each pass: memory holds one block at a time. Standard input, read once, cannot stream. The
    first pass writes the stream's row file in a temporary folder inside `cache_dir` (the
    system's temporary folder by default), removed with the stream. Features that need an
    encoding (text, dates, --impute) get it from one more pass first, which finds the categories
    and the means. `watch`, when given, is told of each pass as it goes (see `Watch`)."""
    if source == STDIN:
        raise DataError("standard input can be read only once: --stream needs a file")
    for part in source_parts(source):  # a pipe's or FIFO's second pass would wait for ever
        if not part.startswith(SAMPLE) and os.path.exists(part) and not os.path.isfile(part):
            raise DataError(
                f"{display_name(part)} is a pipe or a device, which can be read only once: "
                "--stream reads DATA at each pass and needs files (leave out --stream to read "
                "it once, into memory)"
            )
    w = wanted or Wanted()
    opened = open_parts(source, dialect)
    parts, first, header, name = opened.parts, opened.first, opened.header, opened.name
    roles = w.roles(opened)

    several = len(parts) > 1

    encoding, passes_before = w.reusable(roles.features), 0
    head = _first_frame(first, header, roles)
    classifies = w.classifies(head, roles.targets)
    classes = w.classes if classifies else None
    plain = not w.impute and not roles.categorical
    if encoding is None and plain and _all_numbers(head, roles.features):
        encoding = Encoding.numbers(roles.features)
    if encoding is None or (classifies and classes is None):
        # a pass of its own: the categories, the means, the target's classes
        learner = Learner(roles.features, roles.categorical, w.impute)
        labels: set[str] = set()
        with _watching(watch) as seen:
            for path in parts:
                src = open_source(path, dialect)
                with in_part(src.name, several):
                    same_header(src, read_header(src), header)
                    learner.new_part()
                    for frame in source_frames(src, header, roles):
                        if encoding is None:
                            learner.absorb(frame)
                        else:
                            learner.rows += len(frame)
                        if classifies:
                            labels.update(labels_of(frame[roles.targets[0]]).dropna().unique())
                        seen(learner.rows)
        if encoding is None:
            encoding = learner.finish()
        if classifies and classes is None:
            classes = checked_classes(labels, roles.targets[0])
        passes_before = 1
    columns = Columns(encoding, roles.targets, w.dropna, ids=roles.ids, classes=classes)

    first_pass: list[Reading] = []

    def parse() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        total = 0
        for path in parts:
            src = open_source(path, dialect)
            with in_part(src.name, several):
                same_header(src, read_header(src), header)
                for X, Y in source_blocks(src, header, columns):
                    total += len(X)
                    yield X, Y
        if not first_pass:
            first_pass.append(columns.reading(roles.ids, roles.ignored))
        if total == 0:
            raise DataError(f"{name} has no rows to train on")

    writer = RowFileWriter(len(encoding.features), cache_dir)
    blocks = writer.wrap(parse)
    return Stream(
        encoding.features, roles.targets, _watched(blocks, watch, passes_before), writer, encoding,
        lambda: first_pass[0] if first_pass else Reading(
            encoding, roles.ids, roles.ignored, classes=classes
        ),
        classes,
    )  # fmt: skip


@contextmanager
def _watching(watch: Watch | None) -> Iterator[Callable[[int], None]]:
    """The encoding's own pass, the first, told to `watch`."""
    if watch is None:
        yield lambda rows: None
        return
    with watch(1, None) as shown:
        yield shown


def _watched(blocks: Blocks, watch: Watch | None, passes: int = 0) -> Blocks:
    """The same blocks, each pass told to `watch` as it is read (counted after `passes`)."""
    if watch is None:
        return blocks
    known = None

    def watched() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        nonlocal passes, known
        passes += 1
        rows = 0
        with watch(passes, known) as shown:
            for X, Y in blocks():
                rows += len(X)
                shown(rows)
                yield X, Y
        known = rows

    return watched


class RowFileWriter:
    """Writes the checked rows of a stream's first pass to its row file, raw float64, row after
    row, so that later passes read them back block by block instead of parsing the CSV again, and
    minibatches in shuffled blocks. The file is removed with the writer (or when the process
    ends)."""

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
        self.failure = "is the disk full?"  # why the copy is not complete, once known
        weakref.finalize(self, shutil.rmtree, folder, True)

    def wrap(self, parse: Blocks) -> Blocks:
        """The parsed blocks, the first time written to the row file as they pass; from the
        row file once it is complete."""

        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            if self.complete:
                yield from self._read()
                return
            # the rows are written by a second thread while the next block is parsed
            pending: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=4)
            failed: list[BaseException] = []

            def write() -> None:
                """Every block taken from the queue, whatever fails (a full disk, no inode
                left): the parse must never wait on a writer that has stopped. A failed copy
                is only not used: the next pass parses again."""
                f = None
                try:
                    f = open(self.path, "wb")  # noqa: SIM115 (closed below, failures kept)
                except Exception as e:
                    failed.append(e)
                while (block := pending.get()) is not None:
                    if f is not None and not failed:
                        try:
                            block.tofile(f)
                        except Exception as e:
                            failed.append(e)
                if f is not None:
                    try:
                        f.close()
                    except Exception as e:
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
            if failed:
                self.failure = getattr(failed[0], "strerror", None) or str(failed[0])

        return blocks

    def row_file(self) -> RowFile:
        if not self.complete:
            raise DataError(
                f"cannot keep a copy of the rows in {self.path.parent} ({self.failure}): "
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


def _all_numbers(frame: pd.DataFrame | None, features: list[str]) -> bool:
    """Whether a first block's feature columns are all plain numbers."""
    return frame is not None and all(kind_of(frame[c], False) == "number" for c in features)


def _first_frame(src: Source, header: list[str], roles: Roles) -> pd.DataFrame | None:
    frames = source_frames(src, header, roles)
    try:
        return next(frames, None)
    finally:
        frames.close()


def source_frames(src: Source, header: list[str], roles: Roles) -> Generator[pd.DataFrame]:
    """One source's rows, STREAM_BLOCK_ROWS at a time, as frames (the columns `roles` reads,
    their text kept as text)."""
    with reading(src):
        if src.parquet:
            yield from parquet_frames(src, roles.read, STREAM_BLOCK_ROWS)
            return
        text, verbatim = tuple(sorted(roles.categorical)), tuple(roles.ids)
        yield from csv_frames(
            src.handle(), src.dialect, header, STREAM_BLOCK_ROWS, src.compression, True, text,
            verbatim,
        )  # fmt: skip


def source_blocks(
    src: Source, header: list[str], columns: Columns
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One source's rows, STREAM_BLOCK_ROWS at a time, checked as `read.read_columns` checks
    them."""
    roles = Roles(columns.encoding.sources, columns.targets)
    for part in checked_parts(source_frames(src, header, roles), columns):
        if len(part.X):
            yield part.X, part.Y


def first_problem(
    parts: list[str], sep: str, features: list[str], targets: list[str], dropna: bool
) -> str | None:
    """The first bad cell of the parts, named by part file and row, as `stream` would report it;
    None when every row is good. For errors found elsewhere (a cluster), found again here."""
    columns = Columns(Encoding.numbers(features), targets, dropna)
    try:
        for path in parts:
            src = open_source(path, sep)
            with in_part(src.name, len(parts) > 1):
                for _ in source_blocks(src, read_header(src), columns):
                    pass
    except DataError as e:
        return str(e)
    return None
