"""Whole reads: DATA's checked columns as arrays in memory (`load`, and `load_for_prediction` for
predict), and tables out (`table_csv`). A file under LARGE_FILE_BYTES is read by pandas whole; a
larger plain file in parts on every core (`parallel`); compressed files and standard input a block
of rows at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from babynn_cli.core.encoding import Encoding
from babynn_cli.data import parallel
from babynn_cli.data.columns import (
    Columns,
    Dataset,
    Opened,
    Part,
    Roles,
    checked,
    checked_parts,
    choose_roles,
    open_parts,
    read_header,
    same_header,
    stacked,
)
from babynn_cli.data.encoding import Learner, checked_classes, kind_of, labels_of
from babynn_cli.data.sources import (
    Dialect,
    Source,
    csv_frames,
    in_part,
    open_source,
    parquet_frames,
    reading,
)
from babynn_cli.errors import DataError, UsageError
from babynn_cli.text import listing

PARQUET_BLOCK_ROWS = 1 << 16  # rows of a Parquet file converted at a time


@dataclass(frozen=True)
class Wanted:
    """What a command asks of DATA's columns (None: babynn's default)."""

    targets: list[str] | None = None
    features: list[str] | None = None
    exclude: list[str] | None = None
    ids: list[str] | None = None
    categorical: list[str] | None = None
    dropna: bool = False
    impute: bool = False
    encoding: Encoding | None = None  # read the features as a saved model does (--warm-start)
    loss: str | None = None  # "mse", "cross-entropy" (the target holds classes), None: by the data
    classes: tuple[str, ...] | None = None  # a saved model's classes (--warm-start)

    def classifies(self, head: pd.DataFrame | None, targets: list[str]) -> bool:
        """Whether the targets are classes: asked for, or a target of text when the loss is not
        named (`head`: the first rows). One target column only."""
        if self.loss == "mse":
            return False
        text = head is not None and any(kind_of(head[t], False) != "number" for t in targets)
        wanted = self.loss == "cross-entropy" or self.classes is not None or text
        if wanted and len(targets) > 1:
            raise UsageError(
                f"cross-entropy learns the classes of one target column; {len(targets)} given "
                f"({', '.join(targets)})"
            )
        return wanted

    def roles(self, opened: Opened) -> Roles:
        """The roles of DATA's columns these options give."""
        return choose_roles(
            opened.header, opened.name, self.targets, self.features, self.exclude, self.ids,
            self.categorical,
        )  # fmt: skip

    def reusable(self, features: list[str]) -> Encoding | None:
        """The saved model's encoding when it reads just these feature columns (when it does
        not, the data's own is learned, and --warm-start says what differs)."""
        if self.encoding is None or sorted(self.encoding.sources) != sorted(features):
            return None
        return self.encoding


SNIFF_ROWS = 1000  # rows read first to tell plain numeric data from data that needs encoding


def load(source: str, dialect: Dialect | str = ",", wanted: Wanted | None = None) -> Dataset:
    """Features and targets of the CSV at `source` ('-' for standard input; a folder or a glob
    pattern for several parts with one header), read as `wanted` says: plain numeric features
    as they are (in parts on every core for a large file), others by the encoding learned from
    all the rows (`data.encoding`)."""
    w = wanted or Wanted()
    opened = open_parts(source, dialect)
    parts, first, header = opened.parts, opened.first, opened.header
    roles = w.roles(opened)
    encoding = w.reusable(roles.features)
    head = _head(first, header, roles)
    classifies = w.classifies(head, roles.targets)
    plain = not w.impute and not roles.categorical
    if encoding is None and plain and _all_numbers(head, roles.features):
        encoding = Encoding.numbers(roles.features)
    if encoding is not None and encoding.plain and not classifies:
        columns = Columns(encoding, roles.targets, w.dropna, ids=roles.ids)
        arrays = _read_parts(parts, first, header, lambda src: read_columns(src, header, columns))
        X, Y = arrays[0] if len(arrays) == 1 else map(np.concatenate, zip(*arrays, strict=True))
        return Dataset(
            X, Y, columns.features, roles.targets, columns.reading(roles.ids, roles.ignored)
        )
    frames = _frames(parts, first, header, roles)
    if encoding is None:
        learner = Learner(roles.features, roles.categorical, w.impute)
        for part_name, frame in frames:
            with in_part(part_name, len(frames) > 1):
                learner.new_part()
                learner.absorb(frame)
        encoding = learner.finish()
    classes = None
    if classifies:
        classes = w.classes or _classes(frames, roles.targets[0])
    columns = Columns(encoding, roles.targets, w.dropna, ids=roles.ids, classes=classes)
    X, Y = checked(stacked(_checked(frames, columns)), first)
    return Dataset(X, Y, columns.features, roles.targets, columns.reading(roles.ids, roles.ignored))


def _checked(frames: list[tuple[str, pd.DataFrame]], columns: Columns) -> list[Part]:
    """Each part's rows checked, a bad cell named by its part and its row there."""
    got: list[Part] = []
    for part_name, frame in frames:
        with in_part(part_name, len(frames) > 1):
            got.extend(checked_parts([frame], columns))
    return got


def _head(src: Source, header: list[str], roles: Roles) -> pd.DataFrame | None:
    """The first SNIFF_ROWS rows, to tell a plain table (and a target of classes) from others."""
    with reading(src):
        if src.parquet:
            return next(iter(parquet_frames(src, roles.read, SNIFF_ROWS)), None)
        rows = SNIFF_ROWS
        return csv_frames(src.handle(), src.dialect, header, None, src.compression, nrows=rows)


def _all_numbers(head: pd.DataFrame | None, features: list[str]) -> bool:
    """Whether the first rows' feature columns are all numbers (a plain table)."""
    return head is None or all(kind_of(head[c], False) == "number" for c in features)


def _classes(frames: list[tuple[str, pd.DataFrame]], target: str) -> tuple[str, ...]:
    """The target's labels over all the rows, in order; an error unless there are two or more."""
    seen: set[str] = set()
    for _, frame in frames:
        seen.update(labels_of(frame[target]).dropna().unique().tolist())
    return checked_classes(seen, target)


def _frames(
    parts: list[str], first: Source, header: list[str], roles: Roles
) -> list[tuple[str, pd.DataFrame]]:
    """Each part read whole, its header checked against the first part's; with its name."""
    text, verbatim = tuple(sorted(roles.categorical)), tuple(roles.ids)

    def frame(src: Source) -> pd.DataFrame:
        with reading(src):
            if src.parquet:
                got = list(parquet_frames(src, roles.read, PARQUET_BLOCK_ROWS))
                if not got:
                    raise DataError(f"{src.name} has no rows")
                return src.name, pd.concat(got, ignore_index=True)
            read = csv_frames(
                src.handle(), src.dialect, header, None, src.compression, True, text, verbatim
            )
        if not len(read):
            raise DataError(f"{src.name} has a header but no rows")
        return src.name, read

    return _read_parts(parts, first, header, frame)


def _read_parts(
    parts: list[str], first: Source, header: list[str], read: Callable[[Source], Any]
) -> list[Any]:
    """`read` of every part (the first already opened: standard input can be read once), each
    header checked against the first's."""
    got = []
    for k, part in enumerate(parts):
        src = first if k == 0 else open_source(part, first.dialect)
        with in_part(src.name, len(parts) > 1):
            same_header(src, read_header(src) if k else header, header)
            got.append(read(src))
    return got


@dataclass(frozen=True)
class ToPredict:
    """What predict reads of DATA: the model's features (nan in a row with a missing cell the
    model does not fill), the targets when DATA has them all and they are numbers (None
    otherwise, and why), the id columns DATA has, and what predict counts on stderr."""

    X: np.ndarray
    Y: np.ndarray | None
    unusable: str | None
    ids: pd.DataFrame | None
    blank: int  # rows whose prediction is left empty (a missing cell, no --impute)
    unseen: dict[str, int]  # cells holding a category the model never saw, by column
    # a classifier's: each row's class in the model's order (−1 a label it does not know, −2
    # none), when DATA has the target
    codes: np.ndarray | None = None
    unknown: dict[str, int] = field(default_factory=dict)  # labels not among the classes: rows

    @classmethod
    def of_rows(cls, rows: int, Y: np.ndarray | None) -> ToPredict:
        """Rows read elsewhere (by a cluster's workers): how many, and their targets."""
        return cls(np.empty((rows, 0)), Y, None, None, 0, {})


def load_for_prediction(
    source: str,
    dialect: Dialect | str,
    encoding: Encoding,
    targets: list[str],
    ids: list[str],
    classes: tuple[str, ...] | None = None,
) -> ToPredict:
    """DATA's rows as a saved model reads them (its `encoding`), every row kept in order, all in
    memory (`prediction_blocks` reads them a block at a time); `classes`: a classifier's, read
    from the target's labels."""
    blocks = list(prediction_blocks(source, dialect, encoding, targets, ids, classes))
    last = blocks[-1]
    Y = None if last.Y is None else np.concatenate([b.Y for b in blocks if b.Y is not None])
    id_frame = None
    if last.ids is not None:
        id_frame = pd.concat([b.ids for b in blocks if b.ids is not None], ignore_index=True)
    codes = None
    if last.codes is not None:
        codes = np.concatenate([b.codes for b in blocks if b.codes is not None])
    X = np.concatenate([b.X for b in blocks])
    return replace(last, X=X, Y=Y, ids=id_frame, codes=codes)


PREDICT_BLOCK_ROWS = 1 << 16  # rows read, predicted and written at a time by a streamed predict


def prediction_blocks(
    source: str,
    dialect: Dialect | str,
    encoding: Encoding,
    targets: list[str],
    ids: list[str],
    classes: tuple[str, ...] | None = None,
    rows: int | None = None,
) -> Iterator[ToPredict]:
    """DATA's rows as a saved model reads them, block after block of about `rows` rows, in
    order: memory follows the block, not DATA. Each block's counts (`blank`, `unseen`,
    `unknown`, `unusable`) are the running totals: the last block's are DATA's."""
    opened = open_parts(source, dialect)
    parts, first, header = opened.parts, opened.first, opened.header
    lacking = [c for c in encoding.sources if c not in header]
    if lacking:
        raise DataError(f"{opened.name} lacks the model's feature column(s): {listing(lacking)}")
    has_targets = all(t in header for t in targets)
    present = [c for c in ids if c in header]
    wanted_targets = targets if has_targets else []
    categories = {c.name for c in encoding.columns if c.kind == "category"}
    roles = Roles(encoding.sources, wanted_targets, present, categories)
    classify = classes if has_targets else None
    columns = Columns(encoding, wanted_targets, predicting=True, ids=present, classes=classify)
    text, verbatim = tuple(sorted(roles.categorical)), tuple(roles.ids)
    rows = rows or PREDICT_BLOCK_ROWS
    for k, part in enumerate(parts):
        src = first if k == 0 else open_source(part, first.dialect)
        with in_part(src.name, len(parts) > 1):
            if k:
                same_header(src, read_header(src), header)
            seen = 0
            with reading(src):
                if src.parquet:
                    frames = parquet_frames(src, roles.read, rows)
                else:
                    frames = csv_frames(
                        src.handle(), src.dialect, header, rows, src.compression, True, text,
                        verbatim,
                    )  # fmt: skip
                for got in checked_parts(frames, columns):
                    seen += got.seen
                    usable = has_targets and columns.targets_unusable is None
                    # in the model's column order, whichever block met them first
                    unseen = {c: columns.unseen[c] for c in encoding.sources if c in columns.unseen}
                    yield ToPredict(
                        got.X, got.Y if usable else None, columns.targets_unusable, got.ids,
                        columns.blank, unseen, got.codes, dict(columns.unknown),
                    )  # fmt: skip
            if not seen:
                raise DataError(
                    f"{src.name} has {'no rows' if src.parquet else 'a header but no rows'}"
                )


def read_columns(src: Source, header: list[str], columns: Columns) -> tuple[np.ndarray, np.ndarray]:
    """X (N, m) and Y (N, n) of `columns`, checked: numeric, finite, nothing missing.

    With columns.dropna True rows with a missing value are dropped; None means the command has
    no --dropna.
    Rows are numbered from 1, the first row after the header. Every column is parsed, used or
    not, so that a row with too many fields is an error rather than quietly cut short.
    """
    if src.parquet:
        with reading(src):
            frames = parquet_frames(src, columns.used, PARQUET_BLOCK_ROWS)
            parts = list(checked_parts(frames, columns))
        if not sum(p.seen for p in parts):
            raise DataError(f"{src.name} has no rows")
        return checked(stacked(parts), src)
    if parallel.splittable(src):
        try:
            with reading(src):
                arrays = parallel.read_in_parts(src, header, columns)
        except parallel.Unsplittable:
            arrays = None
        if arrays is not None:
            return checked(arrays, src)
    whole = src.plain_file  # a small plain file: pandas reads it whole, fastest
    with reading(src):
        chunk = None if whole else _rows_per_block(len(header))
        reader = csv_frames(src.handle(), src.dialect, header, chunk, src.compression)
        parts = list(checked_parts([reader] if whole else reader, columns))
    if not sum(p.seen for p in parts):
        raise DataError(f"{src.name} has a header but no rows")
    return checked(stacked(parts), src)


def _rows_per_block(n_columns: int) -> int:
    """Rows in about BLOCK_BYTES of text, at a guess of 12 characters a field."""
    return max(1024, parallel.BLOCK_BYTES // (12 * max(1, n_columns)))


def table_csv(columns: Mapping[str, Iterable[Any]]) -> str:
    """A CSV text with these columns, every float in full precision, a column of whole numbers
    (counts, epochs) as whole numbers even where some cells are empty."""
    frame = pd.DataFrame({name: _whole(list(values)) for name, values in columns.items()})
    return str(frame.to_csv(index=False, lineterminator="\n"))


def _whole(values: list[Any]) -> Any:
    """Integers with gaps (None) as pandas' nullable Int64, which writes 967, not 967.0."""
    present = [v for v in values if v is not None]
    integers = (int, np.integer)
    if present and all(isinstance(v, integers) and not isinstance(v, bool) for v in present):
        return pd.array(values, dtype="Int64")
    return values
