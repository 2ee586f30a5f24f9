"""Columns: the header, which of DATA's columns are targets, features and ids (`Roles`), and the
checks each block of parsed rows passes to become arrays (`Columns`): the features read as their
encoding says (`data.encoding`), the targets as numbers, and every missing cell filled (--impute),
dropped with its row (--dropna, counted) or named in an error that says both ways out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from babynn_cli.core.encoding import Encoding
from babynn_cli.data.encoding import CellError, encode, labels_of, numbers_of
from babynn_cli.data.sources import (
    Dialect,
    Source,
    display_name,
    open_source,
    pyarrow_parquet,
    reading,
    source_parts,
)
from babynn_cli.errors import DataError, UsageError
from babynn_cli.text import listing

UNNAMED = "Unnamed: "  # pandas' name for a column with no name in the header, counted from 0


@dataclass(frozen=True)
class Reading:
    """What reading DATA did besides giving numbers, for the run's header to say: the encoding
    the features were read by, the id columns, the unnamed columns left out (a saved index), the
    rows --dropna dropped, the missing cells --impute filled and the cells holding a category a
    saved model never saw (--warm-start), by column."""

    encoding: Encoding | None = None
    ids: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    dropped: int = 0
    filled: dict[str, int] = field(default_factory=dict)
    unseen: dict[str, int] = field(default_factory=dict)
    classes: tuple[str, ...] | None = None  # the target's labels, when it holds classes


@dataclass(frozen=True)
class Dataset:
    """X: (N, m) features, Y: (N, n) targets, float64, with their column names, and how they were
    read."""

    X: np.ndarray
    Y: np.ndarray
    features: list[str]
    targets: list[str]
    reading: Reading = field(default_factory=Reading)


def read_header(src: Source) -> list[str]:
    """The column names (a column with none is named as pandas names it, 'Unnamed: 0'); an error
    for an empty file or duplicate names."""
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
                keep_default_na=False,  # a column named NA, null or None is named so
                compression=src.compression,
            )
        cells = first.iloc[0].tolist()
    names = ["" if pd.isna(c) else str(c).strip() for c in cells]  # ' a ' is column 'a'
    names = [name or f"{UNNAMED}{k}" for k, name in enumerate(names)]
    dupes = sorted(c for c, k in Counter(names).items() if k > 1)  # O(m), for wide files
    if dupes:
        raise DataError(f"{src.name} has duplicate column names: {listing(dupes)}")
    return names


@dataclass(frozen=True)
class Opened:
    """DATA opened: its parts (one, or a folder's or a glob's), the first part opened, the header
    they share, and the name errors give it."""

    parts: list[str]
    first: Source
    header: list[str]
    name: str


def open_parts(source: str, dialect: Dialect | str) -> Opened:
    parts = source_parts(source)
    first = open_source(parts[0], dialect)
    header = read_header(first)
    return Opened(parts, first, header, first.name if len(parts) == 1 else display_name(source))


def same_header(src: Source, names: list[str], header: list[str]) -> None:
    """An error unless a part's header `names` is the first part's `header`."""
    if names != header:
        raise DataError(
            f"{src.name} has the columns {listing(names)}; the first part has "
            f"{listing(header)}: every part must share the header"
        )


@dataclass(frozen=True)
class Roles:
    """What DATA's columns are for: the targets, the feature columns (DATA's; a category becomes
    several features), the id columns carried through to predictions, the numeric codes read as
    categories, and the unnamed columns left out (a saved index)."""

    features: list[str]
    targets: list[str]
    ids: list[str] = field(default_factory=list)
    categorical: set[str] = field(default_factory=set)
    ignored: list[str] = field(default_factory=list)

    @property
    def read(self) -> list[str]:
        """The columns read from DATA."""
        return [*self.ids, *self.features, *self.targets]


def choose_roles(
    header: list[str],
    name: str,
    targets: list[str] | None,
    features: list[str] | None,
    exclude: list[str] | None = None,
    ids: list[str] | None = None,
    categorical: list[str] | None = None,
) -> Roles:
    """The columns' roles: targets default to the last column, features to every other column
    that is not an id, excluded or unnamed (an unnamed column, a saved index, must be left out:
    by --features or --exclude)."""
    targets = list(targets) if targets else [header[-1]]
    ids, exclude, categorical = list(ids or []), list(exclude or []), list(categorical or [])
    for col in [*targets, *ids, *exclude, *(features or []), *categorical]:
        _require_column(col, header, name)
    for group, flag in ((targets, "--target"), (ids, "--id"), (features or [], "--features")):
        dupes = sorted(c for c, k in Counter(group).items() if k > 1)
        if dupes:
            raise UsageError(f"column '{dupes[0]}' is named twice ({flag})")
    _apart("a target", targets, "an id (--id)", ids)
    _apart("a target", targets, "left out (--exclude)", exclude)
    unnamed = [c for c in header if c.startswith(UNNAMED)]
    if features:
        _apart("a target", targets, "a feature", features)
        _apart("an id (--id)", ids, "a feature", features)
        chosen = [c for c in features if c not in exclude]
    else:
        taken = {*targets, *ids, *exclude}
        strays = [c for c in unnamed if c not in taken]
        if strays:
            k = header.index(strays[0])
            raise DataError(
                f"column {k + 1} of {name} has no name in the header (a saved index?): pass "
                f"--exclude '{strays[0]}' to leave it out, or name it"
            )
        chosen = [c for c in header if c not in taken]
    if not chosen:
        raise DataError(f"{name} has no feature columns besides the target {', '.join(targets)}")
    for col in categorical:
        if col not in chosen:
            raise UsageError(f"--categorical '{col}' is not one of the features")
    ignored = [c for c in unnamed if c not in {*chosen, *targets, *ids}]
    return Roles(chosen, targets, ids, set(categorical), ignored)


def _apart(what: str, these: list[str], other: str, those: list[str]) -> None:
    both = [c for c in these if c in those]
    if both:
        raise UsageError(f"column '{both[0]}' is named both as {what} and as {other}")


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
    ids: pd.DataFrame | None = None  # the id columns of the rows kept (predict)
    codes: np.ndarray | None = None  # predict, classes: each row's class (−1 unknown, −2 none)


class Columns:
    """What to take from each block of parsed rows, and the checks each must pass.

    fit (`predicting` False): every feature cell is a number its encoding reads, or filled
    (--impute); a row with a missing cell no rule fills, or a missing target, is dropped with
    `dropna` (and counted) and an error naming the ways out without. predict: every row is kept;
    one whose features have a missing cell gets nan features (its prediction is left empty), and
    targets that cannot score the predictions are noted (`targets_unusable`), not errors."""

    def __init__(
        self,
        encoding: Encoding,
        targets: list[str],
        dropna: bool = False,
        predicting: bool = False,
        ids: list[str] | None = None,
        classes: tuple[str, ...] | None = None,
    ) -> None:
        self.encoding, self.targets, self.dropna = encoding, targets, dropna
        self.predicting, self.ids = predicting, list(ids or [])
        self.classes = classes  # the target's labels, in order, when the model classifies
        self.features = encoding.features
        self.used = [*encoding.sources, *targets]
        self.targets_unusable: str | None = None
        self.dropped = 0  # rows --dropna left out
        self.blank = 0  # predict: rows whose features have a missing cell (their prediction empty)
        self.unseen: dict[str, int] = {}  # cells holding a category not seen in training
        self.unknown: dict[str, int] = {}  # predict: target labels not among `classes`, counted
        self.filled: dict[str, int] = {}  # missing cells --impute filled, by column

    def reading(self, ids: list[str], ignored: list[str]) -> Reading:
        """What these checks did to the rows so far."""
        return Reading(
            self.encoding, ids, ignored, self.dropped, dict(self.filled), dict(self.unseen),
            self.classes,
        )  # fmt: skip

    def absorb(self, chunk: pd.DataFrame) -> Part:
        if self.encoding.plain and not self.predicting and not self.ids and not self.classes:
            # the usual case: plain numbers, every one finite; one copy and one pass
            frame = chunk if list(chunk.columns) == self.used else chunk[self.used]
            if all(kind in "iuf" for kind in frame.dtypes.map(lambda t: t.kind)):
                values = frame.to_numpy(dtype=np.float64)
                if np.isfinite(values).all():
                    m = len(self.features)
                    return Part(values[:, :m], values[:, m:], len(values))
        try:
            if self.encoding.plain:
                X = self._numbers(chunk, self.encoding.sources)
                missing = np.isnan(X).any(axis=1)
                first = np.argmax(np.isnan(X), axis=1)
            else:
                encoded = encode(self.encoding, chunk)
                for counts, more in ((self.unseen, encoded.unseen), (self.filled, encoded.filled)):
                    for col, count in more.items():
                        counts[col] = counts.get(col, 0) + count
                X, missing, first = encoded.X, encoded.missing, encoded.missing_column
            codes = self._codes(chunk) if self.classes is not None else None
            Y = self._targets(chunk) if codes is None else self._one_hot(codes)
        except CellError as e:
            m, n = len(self.features), len(self.targets)
            return Part(np.empty((0, m)), np.empty((0, n)), 0, e.template, e.row)
        seen = len(X)
        ids = chunk[self.ids].reset_index(drop=True) if self.ids else None
        infinite = np.isinf(np.column_stack([X, Y if not self.predicting else Y[:, :0]]))
        if infinite.any():
            row = int(np.argmax(infinite.any(axis=1)))
            col = [*self.features, *self.targets][int(np.argmax(infinite[row]))]
            message = f"column '{col}' has an infinite value in row {{row}}"
            return Part(X[:0], Y[:0], seen, message, row)
        if self.predicting:
            self.blank += int(missing.sum())
            X[missing] = np.nan
            return Part(X, Y, seen, ids=ids, codes=codes)
        no_target = np.isnan(Y).any(axis=1)
        bad = missing | no_target
        if not bad.any():
            return Part(X, Y, seen, ids=ids)
        if self.dropna:
            self.dropped += int(bad.sum())
            kept = ~bad
            return Part(X[kept], Y[kept], seen, ids=None if ids is None else ids[kept])
        row = int(np.argmax(bad))
        if missing[row]:
            col = self.encoding.sources[int(first[row])]
            message = (
                f"column '{col}' has a missing value in row {{row}}: pass --impute to fill "
                "missing cells (a number with its column's mean, a category with a level of its "
                "own) or --dropna to drop the rows that have one"
            )
        else:
            col = self.targets[int(np.argmax(np.isnan(Y[row])))]
            message = (
                f"the target '{col}' has a missing value in row {{row}}: a row without its target "
                "cannot train; pass --dropna to drop such rows"
            )
        return Part(X[:0], Y[:0], seen, message, row)

    def _numbers(self, chunk: pd.DataFrame, names: list[str]) -> np.ndarray:
        """Columns that must be numbers, as float64 (nan where missing), an array of their own
        (pandas may hand out a read-only view of one float column: predict writes nan into it)."""
        if not names:
            return np.empty((len(chunk), 0))
        frame = chunk[names]
        if all(frame[c].dtype.kind in "iuf" for c in names):
            values = frame.to_numpy(dtype=np.float64)
            return values if values.flags.writeable else values.copy()
        return np.column_stack([numbers_of(frame[c], "number", c) for c in names])

    def _codes(self, chunk: pd.DataFrame) -> np.ndarray:
        """Each row's class, by its place in `classes`: −1 for a label not among them, −2 for
        none. In fit every label is one of them (they were read from these rows, or a
        --warm-start model's, which must know them all)."""
        assert self.classes is not None
        labels = labels_of(chunk[self.targets[0]])
        codes = pd.Index(self.classes).get_indexer(labels)
        codes[labels.isna().to_numpy()] = -2
        if self.predicting:
            for label, count in labels[codes == -1].value_counts(sort=False).items():
                self.unknown[str(label)] = self.unknown.get(str(label), 0) + int(count)
        elif (codes == -1).any():
            row = int(np.argmax(codes == -1))
            raise CellError(
                row,
                f"the target '{self.targets[0]}' holds {labels.iloc[row]!r} in row {{row}}, not "
                f"one of the --warm-start model's classes ({', '.join(self.classes)})",
            )
        return codes

    def _one_hot(self, codes: np.ndarray) -> np.ndarray:
        """The targets a classifier learns: for two classes one column, 1 for the second; for
        more, one column a class, 1 for the row's own; nan for a row without a label."""
        assert self.classes is not None
        k = len(self.classes)
        width = 1 if k == 2 else k
        Y = np.zeros((len(codes), width))
        known = codes >= 0
        if k == 2:
            Y[:, 0] = codes == 1
        else:
            Y[np.flatnonzero(known), codes[known]] = 1.0
        Y[~known] = np.nan
        return Y

    def _targets(self, chunk: pd.DataFrame) -> np.ndarray:
        if not self.predicting:
            try:
                return self._numbers(chunk, self.targets)
            except CellError as e:
                raise e.without_hint() from None
        values = np.column_stack(
            [_as_numbers(chunk[c]) for c in self.targets] or [np.empty(len(chunk))]
        )[:, : len(self.targets)]
        if self.targets and self.targets_unusable is None:
            text = [c for c in self.targets if _has_text(chunk[c])]
            if text:
                self.targets_unusable = f"column '{text[0]}' is not numeric"
        return values


def _as_numbers(series: pd.Series) -> np.ndarray:
    if series.dtype.kind in "iufb":
        return series.to_numpy(dtype=np.float64)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)


def _has_text(series: pd.Series) -> bool:
    if series.dtype.kind in "iufb":
        return False
    return bool((pd.to_numeric(series, errors="coerce").isna() & series.notna()).any())


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
    part = Columns(Encoding.numbers(features), targets, dropna).absorb(frame)
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
