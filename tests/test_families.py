"""One test per family of the hostile-user report (issue 11) that the other files do not hold:
numbers at the edges of double precision, rounding that must not look like divergence,
collinear features, sources that can be read once, archives, and names that are not plain."""

from __future__ import annotations

import json
import os
import threading
import zipfile

import numpy as np
import pytest
from conftest import NOTES, run, run_json


def write(path, X, y, names=None):
    names = names or [*(f"x{j}" for j in range(X.shape[1])), "y"]
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header=",".join(names), comments="")
    return path


def test_values_near_1e153_train_and_a_target_past_them_is_one_line(in_tmp):
    """Moments in power-of-two scaled units: finite for any data whose moments are finite."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)) * 1e153
    y = X @ [2.0, 3.0] + 1e152 * rng.normal(size=200)
    doc = run_json("fit", write(in_tmp / "big.csv", X, y), "--lr", 0.5, "--tol", 0, "-e", 3000)
    assert doc["verdict"] == "converged"
    # the reference: np.linalg.lstsq on the same data divided by 1e153 (its own SVD cannot
    # balance a column of ones against columns of 1e153)
    design = np.column_stack([X / 1e153, np.ones(len(X))])
    solution = np.linalg.lstsq(design, y / 1e153, rcond=None)[0]
    np.testing.assert_allclose(np.ravel(doc["weights"]), solution[:2], rtol=1e-9)
    optimum = float(np.mean((y / 1e153 - design @ solution) ** 2)) * 1e306
    assert doc["final_loss"] == pytest.approx(optimum, rel=1e-9)
    write(in_tmp / "huge.csv", X * 100, y * 100)
    result = run("fit", "huge.csv", "-q")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 'huge.csv' has target values up to 1.03e+156, whose squares (the loss) overflow "
        "double precision; rescale the target (divide it by a power of ten) and try again\n"
    )


@pytest.mark.parametrize("rows", [2, 3])
def test_an_exact_fit_is_not_divergence(in_tmp, rows):
    """L* = 0: rounding around it never looks like a rise, and the loss is never below L*."""
    X = np.arange(rows * 2, dtype=float).reshape(rows, 2) ** 1.5
    y = X @ [1.0, -2.0] + 3.0
    result = run("fit", write(in_tmp / "exact.csv", X, y), "--json", "-q")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["verdict"] in ("converged", "still falling")  # never diverged, never below L*
    assert doc["optimum_loss"] >= 0.0
    assert min(h["train_loss"] for h in doc["history"]) >= doc["optimum_loss"]


def test_a_constant_target_converges_without_running_every_epoch(in_tmp):
    X = np.random.default_rng(1).normal(size=(50, 3))
    doc = run_json("fit", write(in_tmp / "c.csv", X, np.full(50, 7.0)))  # until converged
    assert doc["verdict"] == "converged" and doc["epochs_run"] < 1000
    assert doc["final_loss"] <= 1e-6  # L* = 0: converged is L ≤ --gap-tol
    np.testing.assert_allclose(doc["bias"], [7.0], rtol=1e-3)


def test_collinear_features_get_a_rate_below_the_bound_and_are_said_to_be(in_tmp):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=100), rng.normal(size=100)
    path = write(
        in_tmp / "col.csv", np.column_stack([a, 2 * a, b]), a + b + 0.1 * rng.normal(size=100)
    )
    result = run("fit", path, "-q", "--json")
    doc = json.loads(result.stdout)
    assert doc["fastest_lr_full_batch"] < doc["stable_lr_full_batch"]
    followed = run_json("fit", path, "--lr", doc["fastest_lr_full_batch"], "--tol", 0, "-e", 500)
    assert followed["verdict"] == "converged"  # the advised rate converges, no oscillation
    header = run("fit", path, "--epochs", 5).stderr
    assert "the features are collinear" in header and "the optimum is not unique" in header


def test_a_fifo_is_read_once(in_tmp):
    fifo = in_tmp / "data.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(NOTES.read_bytes()))
    writer.start()
    result = run("fit", fifo, "-q", "--json")
    writer.join(timeout=30)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["n_train"] == 200


@pytest.mark.parametrize(
    ("members", "message"),
    [(["a.csv", "b.csv"], "Multiple files found in ZIP file"), ([], "Zero files found in ZIP")],
)
def test_archives_that_are_not_one_csv_are_one_line(in_tmp, members, message):
    with zipfile.ZipFile(in_tmp / "d.zip", "w") as archive:
        for name in members:
            archive.writestr(name, NOTES.read_text())
    result = run("fit", in_tmp / "d.zip", "-q")
    assert result.exit_code == 1 and result.stderr.startswith("Error: cannot read ")
    assert message in result.stderr and result.stderr.count("\n") == 1
    (in_tmp / "bad.xz").write_bytes(b"\xfd7zXZ\x00 not really")
    result = run("fit", in_tmp / "bad.xz", "-q")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1


def test_names_that_look_like_markup_or_hold_a_line_break_are_printed_as_they_are(in_tmp):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(20, 2))
    path = in_tmp / "m.csv"
    path.write_text(
        '"[/b]","[bold]a","x\ny"\n'
        + "\n".join(",".join(map(str, r)) for r in np.column_stack([X, X.sum(1)]))
        + "\n"
    )
    result = run("fit", path, "-o", "m.json")
    assert result.exit_code == 0, result.stderr
    assert "[/b]" in result.stdout and "[bold]a" in result.stdout
    assert "→ x\\ny" in result.stderr  # one line: the break written as an escape
    missing = run("fit", "m.csv", "-t", "nope")
    assert missing.exit_code == 1 and missing.stderr.count("\n") == 1
    assert missing.stderr == "Error: no column 'nope' in 'm.csv' (columns: [/b], [bold]a, x\\ny)\n"


def test_a_long_list_of_missing_columns_is_cut(in_tmp):
    names = [f"c{i}" for i in range(50)]
    (in_tmp / "m.csv").write_text(",".join(names) + "\n" + ",".join("1" * 50) + "\n")
    result = run("fit", in_tmp / "m.csv", "-t", "nope")
    assert result.stderr.endswith("c6, c7, and 42 more)\n")
