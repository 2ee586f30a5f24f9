"""Columns: the header, which columns are features and targets, and the checks every block of
parsed rows must pass (numbers, finite, nothing missing unless --dropna) to become arrays."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from babynn_cli.data.sources import Source, pyarrow_parquet, reading
from babynn_cli.errors import DataError, UsageError
from babynn_cli.text import listing


@dataclass(frozen=True)
class Dataset:
    """X: (N, m) features, Y: (N, n) targets, float64, with their column names."""

    X: np.ndarray
    Y: np.ndarray
    features: list[str]
    targets: list[str]


def read_header(src: Source) -> list[str]:
    """The column names; an error for an empty file or duplicate names."""
    if src.parquet:
        with reading(src):
            cells: list[Any] = pyarrow_parquet().read_schema(src.path).names
    else:
        with reading(src):
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


def same_header(src: Source, names: list[str], header: list[str]) -> None:
    """An error unless a part's header `names` is the first part's `header`."""
    if names != header:
        raise DataError(
            f"{src.name} has the columns {listing(names)}; the first part has "
            f"{listing(header)}: every part must share the header"
        )


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


def _require_column(col: str, columns: list[str], name: str) -> None:
    if col not in columns:
        raise DataError(f"no column '{col}' in {name} (columns: {listing(columns)})")


@dataclass
class Part:
    """One block of parsed rows: the rows kept, how many were read, the first problem found."""

    X: np.ndarray
    Y: np.ndarray
    seen: int
    problem: str | None = None  # a message with {row} for the row number
    problem_row: int = 0  # 0-based within the block


class Columns:
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

    def absorb(self, chunk: pd.DataFrame) -> Part:
        m = len(self.features)
        for col in self.used:
            problem = non_numeric(chunk[col], col)
            if problem is not None and self.optional_targets and col in self.targets:
                self.targets_unusable = self.targets_unusable or f"column '{col}' is not numeric"
                chunk = chunk.assign(**{col: pd.to_numeric(chunk[col], errors="coerce")})
            elif problem is not None:
                row, message = problem
                return Part(np.empty((0, m)), np.empty((0, len(self.targets))), 0, message, row)
        if list(chunk.columns) == self.used:
            values = chunk.to_numpy(dtype=np.float64)
        else:
            values = chunk[self.used].to_numpy(dtype=np.float64)
        seen = len(values)
        if np.isfinite(values).all():  # the usual case: one pass, nothing to report
            return Part(values[:, :m], values[:, m:], seen)
        if self.optional_targets and not np.isfinite(values[:, m:]).all():
            self.targets_unusable = self.targets_unusable or "the targets have missing values"
            if np.isfinite(values[:, :m]).all():
                return Part(values[:, :m], values[:, m:], seen)
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
            return Part(values[:0, :m], values[:0, m:], seen, message, row)
        kept = ~missing.any(axis=1)  # --dropna: rows with a missing value go
        return Part(values[kept, :m], values[kept, m:], seen)


def non_numeric(series: pd.Series, col: str) -> tuple[int, str] | None:
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


def checked_parts(frames: Iterable[pd.DataFrame], columns: Columns) -> Iterator[Part]:
    """Each frame's rows checked; a DataError for the first problem, rows counted from the
    first frame's first row (1)."""
    seen = 0
    for frame in frames:
        part = columns.absorb(frame)
        if part.problem is not None:
            raise DataError(part.problem.format(row=seen + part.problem_row + 1))
        seen += part.seen
        yield part


def checked_frame(
    frame: pd.DataFrame, features: list[str], targets: list[str], dropna: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Rows parsed elsewhere (a partition on a Dask worker), checked as streamed blocks are; a
    DataError for the first bad row, counted from the frame's first row."""
    part = Columns(features, targets, dropna).absorb(frame)
    if part.problem is not None:
        raise DataError(part.problem.format(row=f"{part.problem_row + 1} of a partition"))
    return part.X, part.Y


def checked(arrays: tuple[np.ndarray, np.ndarray], src: Source) -> tuple[np.ndarray, np.ndarray]:
    X, Y = arrays
    if len(X) == 0:
        raise DataError(f"every row of {src.name} has a missing value")
    return X, Y


def stacked(parts: list[Part]) -> tuple[np.ndarray, np.ndarray]:
    if len(parts) == 1:
        return parts[0].X, parts[0].Y
    return np.concatenate([p.X for p in parts]), np.concatenate([p.Y for p in parts])
