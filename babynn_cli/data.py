"""CSV in, arrays out; predictions and histories out. The only module that imports pandas."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from babynn_cli.errors import DataError
from babynn_cli.persistence import write_atomic

STDIN = "-"
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Dataset:
    """X: (N, m) features, Y: (N, n) targets, float64, with their column names."""

    X: np.ndarray
    Y: np.ndarray
    features: list[str]
    targets: list[str]


def display_name(source: str) -> str:
    return "standard input" if source == STDIN else f"'{source}'"


def read_table(source: str, sep: str = ",") -> pd.DataFrame:
    """The CSV at path `source` (or standard input for '-'; .gz and other compressions work)."""
    name = display_name(source)
    if source == STDIN:
        raw = sys.stdin.buffer.read()
        compression = "gzip" if raw.startswith(_GZIP_MAGIC) else None

        def handle() -> io.BytesIO:
            return io.BytesIO(raw)
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(f"cannot read {name}: no such file")
        if path.is_dir():
            raise DataError(f"cannot read {name}: it is a directory")
        compression = "infer"

        def handle() -> Path:  # type: ignore[misc]
            return path

    try:
        header = pd.read_csv(
            handle(), sep=sep, header=None, nrows=1, dtype=str, compression=compression
        )
        frame = pd.read_csv(handle(), sep=sep, compression=compression)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty") from None
    except pd.errors.ParserError as e:
        raise DataError(f"cannot parse {name}: {_first_line(e)}") from None
    except UnicodeDecodeError:
        raise DataError(f"cannot read {name}: it is not UTF-8 text") from None
    except (OSError, EOFError) as e:  # permission denied, a damaged .gz ...
        reason = e.strerror if isinstance(e, OSError) and e.strerror else _first_line(e)
        raise DataError(f"cannot read {name}: {reason}") from None

    names = [str(c) for c in header.iloc[0].tolist()]
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise DataError(f"{name} has duplicate column names: {', '.join(dupes)}")
    if frame.empty:
        raise DataError(f"{name} has a header but no rows")
    frame.columns = names
    return frame


def select(
    frame: pd.DataFrame,
    source: str,
    targets: list[str] | None = None,
    features: list[str] | None = None,
    dropna: bool = False,
) -> Dataset:
    """Targets (default: the last column) and features (default: all the others) as arrays."""
    name = display_name(source)
    columns = list(frame.columns)
    targets = list(targets) if targets else [columns[-1]]
    for col in targets:
        _require_column(col, columns, name)
    if features:
        for col in features:
            _require_column(col, columns, name)
        both = [c for c in features if c in targets]
        if both:
            raise DataError(f"column '{both[0]}' is named both as a target and as a feature")
    else:
        features = [c for c in columns if c not in targets]
    if not features:
        raise DataError(f"{name} has no feature columns besides the target {', '.join(targets)}")
    for group in (targets, features):
        dupes = sorted({c for c in group if group.count(c) > 1})
        if dupes:
            raise DataError(f"column '{dupes[0]}' is named twice")

    values = numeric_block(frame, features + targets, source, dropna=dropna)
    m = len(features)
    return Dataset(
        X=np.ascontiguousarray(values[:, :m]),
        Y=np.ascontiguousarray(values[:, m:]),
        features=features,
        targets=targets,
    )


def numeric_block(
    frame: pd.DataFrame, columns: list[str], source: str, dropna: bool | None = False
) -> np.ndarray:
    """These columns as one float64 array, checked: numeric, finite, nothing missing.

    dropna=True drops rows with a missing value; None means the command has no --dropna.
    Rows are numbered from 1, the first row after the header.
    """
    used = frame[columns]
    for col in columns:
        _require_numeric(used[col], col)
    missing = used.isna().any(axis=1)
    if missing.any():
        if not dropna:
            row = int(np.argmax(missing.to_numpy()))
            col = used.columns[used.iloc[row].isna().to_numpy()][0]
            hint = "" if dropna is None else "; pass --dropna to drop rows with missing values"
            raise DataError(f"column '{col}' has a missing value in row {row + 1}{hint}")
        used = used[~missing]
        if used.empty:
            raise DataError(f"every row of {display_name(source)} has a missing value")
    values = np.ascontiguousarray(used.to_numpy(dtype=np.float64))  # row-major, as fit used it
    infinite = ~np.isfinite(values)
    if infinite.any():
        i, j = np.argwhere(infinite)[0]
        row = int(used.index[i]) + 1  # the frame's row number, whatever was dropped
        raise DataError(f"column '{columns[j]}' has an infinite value in row {row}")
    return values


def require_columns(frame: pd.DataFrame, source: str, columns: list[str], what: str) -> None:
    """An error naming every one of `columns` that `frame` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{display_name(source)} lacks the model's {what}: {', '.join(missing)}")


def load(
    source: str,
    sep: str = ",",
    targets: list[str] | None = None,
    features: list[str] | None = None,
    dropna: bool = False,
) -> Dataset:
    return select(read_table(source, sep), source, targets, features, dropna)


def write_table(columns: dict[str, np.ndarray], path: Path | None) -> None:
    """A CSV with these columns, in full float precision, to `path` (atomically) or stdout."""
    text = pd.DataFrame(columns).to_csv(index=False, lineterminator="\n")
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(path, text)


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _require_column(col: str, columns: list[str], name: str) -> None:
    if col not in columns:
        raise DataError(f"no column '{col}' in {name} (columns: {', '.join(columns)})")


def _require_numeric(series: pd.Series, col: str) -> None:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return
    as_numbers = pd.to_numeric(series, errors="coerce")
    bad = (as_numbers.isna() & series.notna()).to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"column '{col}' is not numeric: row {row + 1} holds {series.iloc[row]!r}")
    raise DataError(f"column '{col}' is not numeric")
