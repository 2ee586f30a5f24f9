"""Whole reads: DATA's checked columns as arrays in memory (`load`, and `load_for_prediction` for
predict), and tables out (`table_csv`). A file under LARGE_FILE_BYTES is read by pandas whole; a
larger plain file in parts on every core (`parallel`); compressed files and standard input a block
of rows at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from babynn_cli.data import parallel
from babynn_cli.data.columns import (
    Columns,
    Dataset,
    checked,
    checked_parts,
    choose_columns,
    read_header,
    same_header,
    stacked,
)
from babynn_cli.data.sources import (
    Source,
    csv_frames,
    in_part,
    open_source,
    parquet_frames,
    reading,
    source_parts,
)
from babynn_cli.errors import DataError
from babynn_cli.text import listing

PARQUET_BLOCK_ROWS = 1 << 16  # rows of a Parquet file converted at a time


def read_parts(
    source: str, sep: str, pick: Callable[[list[str], str], Columns]
) -> tuple[list[str], np.ndarray, np.ndarray, Columns]:
    """Every part of `source`, its header checked against the first part's, its columns (chosen
    by `pick` from the header) read and stacked."""
    parts = source_parts(source)
    several = len(parts) > 1
    header: list[str] | None = None
    blocks = []
    columns: Columns | None = None
    for part in parts:
        src = open_source(part, sep)
        with in_part(src.name, several):
            names = read_header(src)
            if header is None:
                header, columns = names, pick(names, src.name if not several else source)
            same_header(src, names, header)
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

    def pick(header: list[str], name: str) -> Columns:
        f, t = choose_columns(header, name, targets, features)
        chosen[:] = [f, t]
        return Columns(f, t, dropna)

    _, X, Y, _ = read_parts(source, sep, pick)
    return Dataset(X=X, Y=Y, features=chosen[0], targets=chosen[1])


def load_for_prediction(
    source: str, sep: str, features: list[str], targets: list[str]
) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """The model's feature columns, and its target columns when the data has them all, usable:
    (X, Y or None, why the targets cannot score the predictions, when they are there but not
    numbers)."""
    has_targets = False

    def pick(header: list[str], name: str) -> Columns:
        nonlocal has_targets
        missing = [c for c in features if c not in header]
        if missing:
            raise DataError(f"{name} lacks the model's feature column(s): {listing(missing)}")
        has_targets = all(t in header for t in targets)
        return Columns(features, targets if has_targets else [], None, optional_targets=True)

    _, X, Y, columns = read_parts(source, sep, pick)
    if not has_targets or columns.targets_unusable:
        return X, None, columns.targets_unusable
    return X, Y, None


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
        reader = csv_frames(src.handle(), src.sep, header, chunk, src.compression)
        parts = list(checked_parts([reader] if whole else reader, columns))
    if not sum(p.seen for p in parts):
        raise DataError(f"{src.name} has a header but no rows")
    return checked(stacked(parts), src)


def _rows_per_block(n_columns: int) -> int:
    """Rows in about BLOCK_BYTES of text, at a guess of 12 characters a field."""
    return max(1024, parallel.BLOCK_BYTES // (12 * max(1, n_columns)))


def table_csv(columns: Mapping[str, Iterable[Any]]) -> str:
    """A CSV text with these columns, every float in full precision."""
    return str(pd.DataFrame(columns).to_csv(index=False, lineterminator="\n"))
