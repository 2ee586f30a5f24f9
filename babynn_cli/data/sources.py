"""Sources: naming and opening what DATA names (a file, standard input, a sample, a folder or a
glob of parts), and the one place pandas and pyarrow open a file (`csv_frames`, `parquet_frames`),
their errors turned into one line (`reading`)."""

from __future__ import annotations

import glob
import io
import lzma
import re
import sys
import tarfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from babynn_cli.errors import DataError, UsageError
from babynn_cli.text import first_line, listing

STDIN = "-"
_GZIP_MAGIC = b"\x1f\x8b"
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")
SAMPLE = "sample:"  # DATA written sample:NAME reads one of the samples that ship with babynn
SAMPLES = {
    "notes_example": "the notes' example: x0, x1, x2 → y, 200 rows, a linear rule plus noise",
    "two_outputs": "a, b, c, d → y1, y2, 300 rows: one affine map, two outputs",
    "nonlinear": "x0, x1 → y, 1000 rows: sin(x0) + x1², no line can follow it",
    "diabetes": "10 measurements of 442 patients → disease progression a year later (real data)",
    "penguins": "344 penguins as the field file has them: ids, text, dates, NA cells, comments",
    "iris": "4 measurements of 150 irises → species (3 classes, text labels: classification)",
}


def sample_text(name: str) -> bytes:
    """The CSV of the sample called `name` (see SAMPLES), as shipped inside the package."""
    from importlib.resources import files

    if name not in SAMPLES:
        raise DataError(f"no sample '{name}': the samples are {', '.join(SAMPLES)}")
    try:  # an installed babynn: sample_data/ ships inside it as babynn_cli.samples
        return (files("babynn_cli.samples") / f"{name}.csv").read_bytes()
    except ModuleNotFoundError:  # a checkout (or an editable install): sample_data/ beside it
        return (Path(__file__).resolve().parents[2] / "sample_data" / f"{name}.csv").read_bytes()


def display_name(source: str) -> str:
    if source.startswith(SAMPLE):
        return f"the sample {source.removeprefix(SAMPLE)}"
    return "standard input" if source == STDIN else f"'{source}'"


# The cells that mean "missing" (pandas' own list), and any --na-values besides
NA_CELLS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip


@dataclass(frozen=True)
class Dialect:
    """How a CSV writes its values: the field delimiter, the decimal mark, the thousands
    separator (none: not allowed), and the cells that mean missing besides NA_CELLS."""

    sep: str = ","
    decimal: str = "."
    thousands: str | None = None
    na_values: tuple[str, ...] = ()

    @property
    def plain(self) -> bool:
        """Commas or another one-character delimiter, and nothing else to undo."""
        return len(self.sep) == 1 and self.decimal == "." and self.thousands is None


@dataclass(frozen=True)
class Source:
    """An opened CSV: a path, or the bytes read from standard input, and its dialect."""

    label: str
    dialect: Dialect
    path: Path | None = None
    raw: bytes | None = None

    @property
    def sep(self) -> str:
        return self.dialect.sep

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


def open_source(source: str, dialect: Dialect | str = ",") -> Source:
    """The CSV at `source` (`dialect`: its Dialect, or just its delimiter). Standard input, a pipe
    (`<(cat f)`), a FIFO or a device can be read only once: their bytes are read now, and parsed
    from memory."""
    how = dialect if isinstance(dialect, Dialect) else Dialect(dialect)
    if source == STDIN:
        if sys.stdin is None:  # closed (<&-): nothing to read
            raise DataError("standard input is closed: give DATA a file, or pipe the CSV in")
        return Source(source, how, raw=sys.stdin.buffer.read())
    if source.startswith(SAMPLE):
        return Source(source, how, raw=sample_text(source.removeprefix(SAMPLE)))
    path = Path(source)
    name = display_name(source)
    if not path.exists():
        raise DataError(f"cannot read {name}: no such file")
    if path.is_dir():
        raise DataError(f"cannot read {name}: it is a directory")
    if not path.is_file():
        try:
            return Source(source, how, raw=path.read_bytes())
        except OSError as e:
            raise DataError(f"cannot read {name}: {e.strerror}") from None
    return Source(source, how, path=path)


_GLOB = re.compile(r"[*?\[]")
# a folder's parts: data files by their suffix (not notes: .txt, README.md), never hidden ones
# (._name.csv is macOS's resource file beside name.csv)
_PART_SUFFIXES = (".csv", *(f".csv{z}" for z in _COMPRESSED), ".tsv", ".parquet")


def source_parts(source: str) -> list[str]:
    """The files that make up `source`: itself; or, for a folder, its CSV and Parquet files
    (.csv, .csv.gz, …, .parquet); or, for a glob pattern ('data/*.csv', quoted so the shell
    leaves it), its matches; in name order."""
    if source == STDIN or source.startswith(SAMPLE):
        return [source]
    path = Path(source)
    if path.is_dir():
        parts = sorted(
            str(p)
            for p in path.iterdir()
            if p.name.lower().endswith(_PART_SUFFIXES) and not p.name.startswith(".")
        )
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
    if _GLOB.search(source):  # a file whose name is also a pattern: which was meant?
        others = sorted(p for p in glob.glob(source) if p != source)
        if others:
            raise DataError(
                f"{display_name(source)} names a file and, as a pattern, {len(others)} other(s) "
                f"({listing(others, 3)}): rename the file, or list the parts in a folder"
            )
    return [source]


@contextmanager
def in_part(name: str, several: bool) -> Iterator[None]:
    """A DataError about a part names the part, when there are several."""
    try:
        yield
    except DataError as e:
        if several and not str(e).startswith(name):
            raise DataError(f"{name}: {e}") from None
        raise


@contextmanager
def reading(src: Source) -> Iterator[None]:
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


def csv_frames(
    handle: Any,
    dialect: Dialect | str,
    names: list[str],
    chunksize: int | None,
    compression: str | None = None,
    has_header: bool = True,
    text: tuple[str, ...] = (),
    verbatim: tuple[str, ...] = (),
    nrows: int | None = None,
) -> Any:
    """The CSV text of `handle` parsed with the header's `names`: one frame, or an iterator of
    frames of `chunksize` rows. `has_header`: the text starts with the header line (not a part
    cut from the middle of a file). Every column is parsed and no index is taken from the
    first one, so that a row with a field too many is an error rather than a silent shift.
    Columns in `text` are read as text (category codes as written); columns in `verbatim` as
    text with no cell taken for missing (ids, carried through to predictions unchanged)."""
    d = dialect if isinstance(dialect, Dialect) else Dialect(dialect)
    missing = list(NA_CELLS) + list(d.na_values)
    kept = [c for c in verbatim if c in names]
    # one list for every column unless some are verbatim (a dict of 10,000 columns took 1 s)
    na_values = {c: missing for c in names if c not in kept} if kept else missing
    return pd.read_csv(
        handle,
        sep=d.sep,
        decimal=d.decimal,
        thousands=d.thousands,
        header=0 if has_header else None,
        names=names,
        index_col=False,
        chunksize=chunksize,
        compression=compression,
        keep_default_na=False,
        na_values=na_values,
        dtype={c: str for c in (*text, *verbatim) if c in names} or None,
        nrows=nrows,
    )


def pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet
    except ImportError:
        raise UsageError(
            "reading Parquet needs pyarrow, which is not installed: pip install 'babynn[dask]'"
        ) from None
    return pyarrow.parquet


def parquet_frames(src: Source, used: list[str], rows: int) -> Iterator[pd.DataFrame]:
    """A Parquet file's `used` columns, `rows` rows at a time; DataError for a column of nested
    values (structs, lists, maps), which are neither numbers nor categories."""
    file = pyarrow_parquet().ParquetFile(src.path)
    schema = file.schema_arrow
    for name in used:
        kind = schema.field(name).type if name in schema.names else None
        if kind is not None and kind.num_fields > 0:  # struct, list, map, union: nested
            raise DataError(
                f"{src.name}: column '{name}' holds nested values ({kind}), neither numbers nor "
                f"categories: leave it out with --exclude '{name}'"
            )
    for batch in file.iter_batches(batch_size=rows, columns=used):
        yield batch.to_pandas()
