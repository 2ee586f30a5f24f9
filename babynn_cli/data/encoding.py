"""DATA's feature columns read as numbers, as `core.encoding` records it: the encoding learned from
the rows fit sees (at once, or block by block for a stream), and applied to any rows (fit's,
predict's, a stream's blocks).

A column's kind is read from its values: numbers (or --categorical codes), true/false, ISO dates or
date-times, or text, which is a category. A text column with a different value in nearly every row
(an id, free text), or more than MAX_LEVELS levels, is not one-hot encoded silently: it is refused
with the options that leave it out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from babynn_cli.core.encoding import MISSING, Column, Encoding
from babynn_cli.errors import DataError

ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"
)
BOOLEANS = {"true": 1.0, "false": 0.0}
MAX_LEVELS = 1000  # more categories than this in one column: an id or free text, not a category
MIN_ROWS_FOR_IDS = 10  # from this many rows, a text column with a new value in every row is an id


def kind_of(series: pd.Series, categorical: bool) -> str:
    """A column's kind from its values (the first block that has any)."""
    if categorical:
        return "category"
    if series.dtype.kind == "b":
        return "boolean"
    if series.dtype.kind in "iuf":
        return "number"
    values = series.dropna().astype(str).str.strip()
    if values.empty:
        return "number"
    if values.str.lower().isin(list(BOOLEANS)).all():
        return "boolean"
    if values.str.match(ISO_DATE).all():
        return "date"
    if pd.to_numeric(values, errors="coerce").notna().mean() >= 0.5:
        # numbers, with some text pandas did not know as missing ('n/a?', say): a number
        # column, whose first such cell is an error that names it
        return "number"
    return "category"


def labels_of(series: pd.Series) -> pd.Series:
    """Category values as text, a whole-number code written as an integer (1, not 1.0)."""
    if series.dtype.kind == "f":
        whole = series.notna() & (series == np.floor(series))
        text = series.astype(object).where(~whole, series.where(whole).astype("Int64").astype(str))
        return text.astype(str).where(series.notna())
    if series.dtype.kind == "b":
        return series.astype(str)
    return series.astype(str).str.strip().where(series.notna())


def sorted_classes(labels: Iterable[str]) -> tuple[str, ...]:
    """Class labels in their order: as numbers when they all are (2 before 10), else as text."""
    found = sorted(set(labels))
    try:
        return tuple(sorted(found, key=float))
    except ValueError:
        return tuple(found)


MAX_CLASSES = 1000  # more labels than this in a target: not classes


def checked_classes(labels: Iterable[str], target: str) -> tuple[str, ...]:
    """The classes a target's labels make, in order; an error for fewer than two or too many."""
    classes = sorted_classes(labels)
    if len(classes) < 2:
        only = f" ({classes[0]!r})" if classes else ""
        raise DataError(
            f"the target '{target}' holds one class{only}: a classifier needs two or more"
        )
    if len(classes) > MAX_CLASSES:
        raise DataError(
            f"the target '{target}' holds {len(classes):,} different labels, more than "
            f"{MAX_CLASSES:,} classes: a number to predict? pass --loss mse"
        )
    return classes


def numbers_of(series: pd.Series, kind: str, name: str) -> np.ndarray:
    """A number, boolean or date column as float64 (nan where missing); a DataError naming the
    first cell that is none of them (with {row} for the caller to fill in)."""
    if kind == "boolean":
        if series.dtype.kind == "b":
            return series.to_numpy(dtype=np.float64)
        text = series.astype(str).str.strip().str.lower().where(series.notna())
        out = text.map(BOOLEANS)
        bad = text.notna() & out.isna()
        _no_cell(series, bad, name, "true or false")
        return out.to_numpy(dtype=np.float64)
    if kind == "date":
        text = series.astype(str).str.strip().where(series.notna())
        when = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        _no_cell(series, text.notna() & when.isna(), name, "an ISO date (2024-07-02)")
        return fractional_years(when)
    if series.dtype.kind in "iuf":
        return series.to_numpy(dtype=np.float64)
    out = pd.to_numeric(series, errors="coerce")
    _no_cell(series, series.notna() & out.isna(), name, "a number")
    return out.to_numpy(dtype=np.float64)


def fractional_years(when: pd.Series) -> np.ndarray:
    """Dates as years with the part of the year gone by: 2024-07-02 00:00 UTC is 2024.5 (the
    183rd day of a leap year's 366)."""
    days = 366.0 * when.dt.is_leap_year + 365.0 * ~when.dt.is_leap_year
    seconds = when.dt.hour * 3600 + when.dt.minute * 60 + when.dt.second
    part = (when.dt.day_of_year - 1 + seconds / 86400.0) / days
    return (when.dt.year + part).to_numpy(dtype=np.float64, na_value=np.nan)


class CellError(DataError):
    """A cell that is not what its column holds: `row` within the block (from 0), the message
    with {row} where the row's number in the whole data goes, and the ways out for a feature."""

    def __init__(self, row: int, template: str, hint: str = "") -> None:
        super().__init__(template + hint)
        self.row, self.template, self.hint = row, template + hint, hint

    def at(self, offset: int) -> DataError:
        """The error with the row counted from the first row of the data (1), `offset` rows
        before this block."""
        return DataError(self.template.format(row=offset + self.row + 1))

    def without_hint(self) -> CellError:
        """The same cell, without the ways out a feature has (for a target)."""
        return CellError(self.row, self.template.removesuffix(self.hint))


def _no_cell(series: pd.Series, bad: pd.Series, name: str, wanted: str) -> None:
    if not bad.any():
        return
    row = int(np.argmax(bad.to_numpy()))
    value, flag = str(series.iloc[row])[:40], _quoted(name)
    if wanted == "a number":
        hint = (
            f" (if it marks a missing cell, pass --na-values {_quoted(value)}; --categorical "
            f"{flag} reads the column as categories, --exclude {flag} leaves it out)"
        )
    else:
        hint = (
            f" (pass --exclude {flag} to leave it out, or --categorical {flag} to read it as "
            "categories)"
        )
    message = f"column '{_braced(name)}' is not {wanted}: row {{row}} holds {_braced(repr(value))}"
    raise CellError(row, message, _braced(hint))


def _braced(text: str) -> str:
    """Text put in a message template as it is (its braces are not fields)."""
    return text.replace("{", "{{").replace("}", "}}")


def _quoted(text: str) -> str:
    """A name or a cell's text as the shell takes it back."""
    if re.fullmatch(r"[\w.,:/+=-]+", text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


@dataclass
class Learner:
    """An encoding learned from rows, block by block: each column's kind (from the first block
    with values), a category's levels, a number's sum and count (--impute fills with the mean)."""

    names: list[str]
    categorical: set[str]
    impute: bool
    kinds: dict[str, str] = field(default_factory=dict)
    levels: dict[str, set[str]] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    part_start: int = 0  # rows before the part being read (errors count rows within a part)

    def new_part(self) -> None:
        """The next blocks are another part's: a bad cell's row is counted from its start."""
        self.part_start = self.rows

    def absorb(self, frame: pd.DataFrame) -> None:
        """One more block of DATA's rows (its feature columns, by name)."""
        before = self.rows - self.part_start
        self.rows += len(frame)
        for name in self.names:
            series = frame[name]
            if name not in self.kinds:
                if series.notna().any() or name in self.categorical:
                    self.kinds[name] = kind_of(series, name in self.categorical)
                else:
                    continue
            kind = self.kinds[name]
            if kind == "category":
                seen = self.levels.setdefault(name, set())
                labels = labels_of(series)
                seen.update(labels.dropna().unique().tolist())
                if self.impute and labels.isna().any():
                    seen.add(MISSING)
                if len(seen) > MAX_LEVELS:
                    raise DataError(_not_a_category(name, f"more than {MAX_LEVELS:,} values"))
                continue
            try:
                values = numbers_of(series, kind, name)
            except CellError as e:  # the kind read from an earlier block does not hold here
                raise e.at(before) from None
            finite = values[np.isfinite(values)]
            self.sums[name] = self.sums.get(name, 0.0) + float(finite.sum())
            self.counts[name] = self.counts.get(name, 0) + len(finite)

    def finish(self) -> Encoding:
        """The encoding learned; a DataError for a text column that names every row apart."""
        columns = []
        for name in self.names:
            kind = self.kinds.get(name, "number")
            if kind == "category":
                levels = self.levels.get(name, set())
                if name not in self.categorical:
                    _not_text(name, sorted(levels - {MISSING}))
                real = len(levels - {MISSING})
                if self.rows >= MIN_ROWS_FOR_IDS and real >= 0.9 * self.rows and real > 1:
                    raise DataError(_not_a_category(name, "a different value in nearly every row"))
                columns.append(Column(name, kind, tuple(sorted(levels))))
                continue
            count = self.counts.get(name, 0)
            if count == 0 and self.rows:
                raise DataError(f"column '{name}' is empty in every row: pass --exclude "
                                f"{_quoted(name)} to leave it out")  # fmt: skip
            fill = self.sums.get(name, 0.0) / count if self.impute else None
            columns.append(Column(name, kind, fill=fill))
        return Encoding(tuple(columns), self.impute)


DATE_LIKE = re.compile(r"^\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}([ T].*)?$")
SYMBOLS = re.compile(r"[$€£¥%\s]")


def _not_text(name: str, levels: list[str]) -> None:
    """A DataError for text that is something else written another way: dates not in ISO form,
    numbers with currency or percent signs."""
    if not levels:
        return
    flag = _quoted(name)
    if all(DATE_LIKE.match(level) for level in levels):
        raise DataError(
            f"column '{name}' holds dates babynn cannot read ({levels[0]!r}): only ISO dates "
            f"are (2024-07-02, 2024-07-02T12:00); write them so, or pass --exclude {flag}"
        )
    bare = [SYMBOLS.sub("", level).replace(",", "") for level in levels]
    signs = any(b != level for b, level in zip(bare, levels, strict=True))
    if signs and pd.to_numeric(pd.Series(bare), errors="coerce").notna().all():
        raise DataError(
            f"column '{name}' holds numbers written with signs ({levels[0]!r}), which are not "
            f"numbers to babynn: write them plain, or pass --exclude {flag} (a thousands "
            "separator alone is read with --thousands)"
        )


def _not_a_category(name: str, why: str) -> str:
    return (
        f"column '{name}' holds text with {why} (an id, or free text), which a model cannot "
        f"learn as categories: pass --id {_quoted(name)} to carry it through to predictions, or "
        f"--exclude {_quoted(name)} to leave it out"
    )


@dataclass(frozen=True)
class Encoded:
    """A block of rows as numbers: X (N, features), which rows have a missing cell no rule
    filled, and how many cells held a category not seen in training, by column."""

    X: np.ndarray
    missing: np.ndarray  # (N,) bool
    missing_column: np.ndarray  # (N,) index into the encoding's columns of the first missing cell
    unseen: dict[str, int]
    filled: dict[str, int]  # missing cells --impute filled, by column


def encode(encoding: Encoding, frame: pd.DataFrame) -> Encoded:
    """`frame`'s rows (DATA's columns by name) as the encoding reads them."""
    N = len(frame)
    blocks: list[np.ndarray] = []
    unseen: dict[str, int] = {}
    filled: dict[str, int] = {}
    missing = np.zeros(N, dtype=bool)
    first = np.full(N, -1)
    for c, column in enumerate(encoding.columns):
        series = frame[column.name]
        if column.kind == "category":
            labels = labels_of(series)
            absent = labels.isna().to_numpy()
            if MISSING in column.levels:
                _count(filled, column.name, int(absent.sum()))
                labels = labels.fillna(MISSING)
                absent = np.zeros(N, dtype=bool)
            codes = pd.Index(column.levels).get_indexer(labels)  # −1: unseen, or missing
            block = np.zeros((N, len(column.levels)))
            known = codes >= 0
            block[np.flatnonzero(known), codes[known]] = 1.0
            _count(unseen, column.name, int((~known & ~absent).sum()))
        else:
            values = numbers_of(series, column.kind, column.name)
            absent = ~np.isfinite(values) & ~np.isinf(values)  # nan: missing
            if column.fill is not None:
                _count(filled, column.name, int(absent.sum()))
                values = np.where(absent, column.fill, values)
                absent = np.zeros(N, dtype=bool)
            block = values[:, None]
        new = absent & ~missing
        first[new] = c
        missing |= absent
        blocks.append(block)
    X = np.hstack(blocks) if blocks else np.empty((N, 0))
    return Encoded(np.ascontiguousarray(X, dtype=np.float64), missing, first, unseen, filled)


def _count(counts: dict[str, int], name: str, more: int) -> None:
    if more:
        counts[name] = counts.get(name, 0) + more
