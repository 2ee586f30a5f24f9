"""The CSV reader: every path it takes gives the same arrays, and the same errors."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import NOTES

from babynn_cli.data import parallel
from babynn_cli.data.read import Wanted, load
from babynn_cli.data.sources import Dialect
from babynn_cli.errors import DataError


@pytest.fixture
def parts(monkeypatch):
    """Read every plain file in parts, in small blocks, as if it were large, on 3 cores."""
    monkeypatch.setattr(parallel, "LARGE_FILE_BYTES", 0)
    monkeypatch.setattr(parallel, "BLOCK_BYTES", 2000)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 3)


def table(tmp_path, rows=5000, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 4)) * [1, 10, 1e-3, 1e6], columns=list("abcd"))
    frame["y"] = rng.normal(size=rows)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_parts_give_what_pandas_reads(tmp_path, parts):
    path, _ = table(tmp_path)
    got = load(str(path))
    expected = pd.read_csv(path)
    np.testing.assert_array_equal(got.X, expected[list("abcd")].to_numpy())
    np.testing.assert_array_equal(got.Y, expected[["y"]].to_numpy())
    assert got.X.flags["C_CONTIGUOUS"] and got.features == list("abcd")


def test_whole_file_compressed_and_stdin_agree(tmp_path, monkeypatch):
    path, _ = table(tmp_path, rows=300)
    whole = load(str(path))
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    compressed = load(str(gz))
    with open(path, "rb") as handle:
        monkeypatch.setattr(sys, "stdin", type("S", (), {"buffer": handle})())
        stdin = load("-")
    for other in (compressed, stdin):
        np.testing.assert_array_equal(other.X, whole.X)
        np.testing.assert_array_equal(other.Y, whole.Y)


def test_errors_name_the_row_across_parts(tmp_path, parts):
    path, frame = table(tmp_path)
    frame.loc[4321, "c"] = np.nan
    frame.loc[4000, "b"] = np.inf
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'b' has an infinite value in row 4001$"):
        load(str(path))
    frame.loc[4000, "b"] = 1.0
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="column 'c' has a missing value in row 4322: pass"):
        load(str(path))
    dropped = load(str(path), ",", Wanted(dropna=True))
    assert len(dropped.X) == 4999


def test_text_in_a_later_part(tmp_path, parts):
    path, frame = table(tmp_path)
    frame["a"] = frame["a"].astype(object)
    frame.loc[3999, "a"] = "n/a?"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'a' is not a number: row 4000 holds 'n/a\?' "):
        load(str(path))
    np.testing.assert_array_equal(
        load(str(path), Dialect(",", na_values=("n/a?",)), Wanted(dropna=True)).X,
        frame.drop(index=3999).iloc[:, :-1].to_numpy(dtype=float),
    )


def test_a_row_with_too_many_fields_is_an_error_in_parts_too(tmp_path, parts):
    path, _ = table(tmp_path)
    lines = path.read_text().splitlines()
    lines[3000] += ",99"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"^row 3000 of '.*t.csv' has 6 fields; the header has 5$"):
        load(str(path))


def test_quoted_fields_fall_back_to_one_reader(tmp_path, parts):
    path = tmp_path / "q.csv"
    path.write_text('"a","y"\n' + "".join(f'"{i}",{2 * i}\n' for i in range(3000)))
    got = load(str(path))
    np.testing.assert_array_equal(got.X[:, 0], np.arange(3000))


def test_rows_longer_than_the_estimate(tmp_path, parts, monkeypatch):
    """Parts whose rows outgrow the space reserved for them are read again as one."""
    monkeypatch.setattr(parallel, "SLACK", 0.1)
    path, _ = table(tmp_path, rows=2000)
    got = load(str(path))
    np.testing.assert_array_equal(got.X, pd.read_csv(path)[list("abcd")].to_numpy())


def test_help_and_version_import_neither_numpy_nor_pandas():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from babynn_cli.cli import app\n"
        "for args in (['--help'], ['--version'], ['fit', '--help'], ['sweep-lr', '-h']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0\n"
        "print(sorted(m for m in ('numpy', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _split(tmp_path, frame, parts, suffix=".csv"):
    folder = tmp_path / "parts"
    folder.mkdir()
    edges = np.linspace(0, len(frame), parts + 1).astype(int)
    for i in range(parts):
        frame.iloc[edges[i] : edges[i + 1]].to_csv(folder / f"part{i}{suffix}", index=False)
    return folder


def test_a_folder_or_a_glob_of_parts_is_one_data_set(tmp_path):
    frame = pd.read_csv(NOTES)
    folder = _split(tmp_path, frame, 4)
    whole = load(str(NOTES))
    for source in (str(folder), str(folder / "part*.csv")):
        got = load(source)
        np.testing.assert_array_equal(got.X, whole.X)
        np.testing.assert_array_equal(got.Y, whole.Y)
        assert got.features == whole.features


def test_parts_must_share_the_header_and_errors_name_the_part(tmp_path):
    frame = pd.read_csv(NOTES)
    folder = _split(tmp_path, frame, 3)
    frame.iloc[:5].rename(columns={"x1": "z"}).to_csv(folder / "part3.csv", index=False)
    with pytest.raises(DataError, match=r"part3.csv' has the columns x0, z, x2, y; the first part"):
        load(str(folder))
    broken = frame.iloc[:5].astype(object)
    broken.loc[2, "x1"] = "oops"
    broken.to_csv(folder / "part3.csv", index=False)
    with pytest.raises(DataError, match=r"^'.*part3.csv': column 'x1' is not a number: row 3"):
        load(str(folder))


def test_fit_and_predict_read_parts(tmp_path, monkeypatch):
    from conftest import run_json

    monkeypatch.chdir(tmp_path)
    folder = _split(tmp_path, pd.read_csv(NOTES), 2, ".csv.gz")
    whole = run_json("fit", NOTES, "-o", "a.json")
    parts = run_json("fit", folder, "-o", "b.json")
    assert parts["weights"] == whole["weights"] and parts["n_train"] == 200
    predicted = run_json("predict", "b.json", str(folder / "*.csv.gz"))
    assert len(predicted["predictions"]) == 200
