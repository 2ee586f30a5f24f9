"""babynn compare and its reference row, the closed-form least-squares optimum."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import DIABETES, NOTES, TWO, lstsq_solution, run, run_json

from babynn_cli.core.moments import least_squares


def test_reference_matches_lstsq_on_well_conditioned_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)) * [1, 2, 3, 4, 5] + [1, -1, 0, 2, 3]
    Y = X @ rng.normal(size=(5, 2)) + rng.normal(size=(300, 2))
    ref = least_squares(X, Y)
    design = np.column_stack([X, np.ones(300)])
    sol = np.linalg.lstsq(design, Y, rcond=None)[0]
    np.testing.assert_allclose(ref.W, sol[:-1], rtol=1e-12)
    np.testing.assert_allclose(ref.w0, sol[-1], rtol=1e-12)
    assert ref.loss == pytest.approx(((Y - design @ sol) ** 2).sum() / 300, rel=1e-13)
    no_b = least_squares(X, Y, intercept=False)
    np.testing.assert_allclose(no_b.W, np.linalg.lstsq(X, Y, rcond=None)[0], rtol=1e-12)
    assert not no_b.w0.any()


def test_reference_stays_accurate_on_a_badly_conditioned_design():
    """Two nearly equal columns of size 10³ beside one of size 10⁻³: cond(X̃) ≈ 10⁸, so the notes'
    (X̃ᵀX̃)⁻¹X̃ᵀY, squaring it to 10¹⁶, keeps about no digits; y is exactly X·w + 4."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=500) * 1e3 + 5e3
    X = np.column_stack([x, x + 1e-4 * rng.normal(size=500), rng.normal(size=500) * 1e-3])
    w = np.array([[2.0], [-1.0], [300.0]])
    y = X @ w + 4.0
    design = np.column_stack([X, np.ones(500)])
    assert np.linalg.cond(design) > 1e7
    ref = least_squares(X, y)
    np.testing.assert_allclose(ref.W, w, rtol=1e-9)
    np.testing.assert_allclose(ref.w0, [4.0], rtol=1e-9)
    naive = np.linalg.solve(design.T @ design, design.T @ y)
    assert np.abs(naive[:3] - w).max() > 1e3 * np.abs(ref.W - w).max()


def test_reference_fits_a_polynomial_design_past_the_limits_of_the_normal_equations():
    """x, x², …, x⁷ on [100, 101]: cond(X̃ᵀX̃) > 10²⁵; y is an exact combination of the columns,
    so the best fit reproduces it to rounding."""
    x = np.linspace(100.0, 101.0, 400)
    X = np.column_stack([x**p for p in range(1, 8)])
    y = (X @ (np.array([3.0, -2.0, 1.0, 0.5, -0.25, 0.125, -0.0625]) * 1e-6) + 7.0)[:, None]
    design = np.column_stack([X, np.ones(len(x))])
    assert np.linalg.cond(design.T @ design) > 1e25
    ref = least_squares(X, y)
    assert ref.loss / np.var(y) < 1e-20
    np.testing.assert_allclose(X @ ref.W + ref.w0, y, rtol=1e-11)


def test_reference_recovers_known_weights_of_columns_of_very_different_sizes():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 4)) * [1e-6, 1.0, 1e6, 1e3] + [0, 1e3, 0, -1e4]
    w = np.array([[2e6], [3.0], [-4e-6], [5e-3]])
    y = X @ w - 11.0
    ref = least_squares(X, y)
    np.testing.assert_allclose(ref.W, w, rtol=1e-8)
    np.testing.assert_allclose(ref.w0, [-11.0], rtol=1e-8)


def test_reference_row_and_ranking(in_tmp):
    doc = run_json("compare", NOTES)
    W, b, loss = lstsq_solution(NOTES)
    ref = doc["reference"]
    np.testing.assert_allclose(ref["weights"], W, rtol=1e-12)
    np.testing.assert_allclose(ref["bias"], b, rtol=1e-12)
    assert ref["final_loss"] == pytest.approx(loss, rel=1e-13)
    gaps = [r["gap"] for r in doc["rows"]]
    assert gaps == sorted(gaps)  # ranked by gap
    assert doc["best"] == doc["rows"][0]["label"]
    assert len(doc["rows"]) == 4  # the default set
    labels = [r["label"] for r in doc["rows"]]
    # full batch starts at fit's auto rate, η* (rounded down), batch 32 at 0.1
    assert "inverse η0=0.1, batch 32" in labels and "constant η0=0.4856, full batch" in labels
    for row in doc["rows"]:
        assert row["gap"] == pytest.approx(row["final_loss"] - ref["final_loss"], abs=1e-12)
        assert np.array(row["weights"]).shape == (3, 1) and len(row["bias"]) == 1


def test_stable_constant_rate_at_full_batch_closes_the_gap_below_1e_8(in_tmp):
    args = ("--schedule", "constant", "--lr", 0.1, "--lr", 0.3, "--epochs", 1000)
    doc = run_json("compare", NOTES, *args)  # 1,000 epochs, as asked: past --gap-tol
    for row in doc["rows"]:
        assert row["relative_gap"] < 1e-8
        assert row["verdict"] == "converged"
        assert row["reached_epoch"] is not None


def test_every_combination_runs_and_matches_fit(in_tmp):
    args = ("--schedule", "constant", "--schedule", "step", "--lr", 0.05, "--lr", 0.2)
    doc = run_json("compare", TWO, "-t", "y1", "-t", "y2", *args, "-b", "full", "-b", 25)
    assert len(doc["rows"]) == 8
    row = next(r for r in doc["rows"] if r["label"] == "step η0=0.2, batch 25")
    fitted = run_json(
        "fit", TWO, "-t", "y1", "-t", "y2", "--schedule", "step", "--lr", 0.2, "-b", 25
    )
    assert row["final_loss"] == pytest.approx(fitted["final_loss"], rel=1e-10)
    np.testing.assert_allclose(row["weights"], fitted["weights"], rtol=1e-9)


def test_saved_models_appear_as_rows(in_tmp):
    run("fit", NOTES, "-q", "-o", "good.json")
    run("fit", NOTES, "-q", "--epochs", 3, "-o", "early.json")
    run("fit", NOTES, "-q", "--features", "x0,x1", "-o", "two.json")
    doc = run_json(
        "compare", NOTES, "--model", "good.json", "--model", "early.json", "--model", "two.json"
    )
    saved = {r["label"]: r for r in doc["rows"] if r["kind"] == "saved model"}
    assert set(saved) == {"model good.json", "model early.json", "model two.json"}
    good = json.loads((in_tmp / "good.json").read_text())
    assert saved["model good.json"]["final_loss"] == pytest.approx(
        good["result"]["final_loss"], rel=1e-12
    )
    assert saved["model two.json"]["weights"][2] == [0.0]  # x2 unused
    gaps = [r["gap"] for r in doc["rows"]]
    assert gaps == sorted(gaps)
    assert saved["model early.json"]["gap"] > saved["model good.json"]["gap"]


def test_model_whose_features_do_not_match_is_an_error(in_tmp):
    run("fit", DIABETES, "-q", "-o", "d.json")
    result = run("compare", NOTES, "--model", "d.json")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: model 'd.json' uses column(s) age, sex, bmi, bp, s1, s2, s3, s4, s5, s6 that are "
        "not among the data's features (x0, x1, x2)\n"
    )
    run("fit", TWO, "-q", "-t", "y2", "--features", "a,b,c,d", "-o", "y2.json")
    result = run("compare", TWO, "-t", "y1", "--features", "a,b,c,d", "--model", "y2.json")
    assert result.exit_code == 1
    assert result.stderr == "Error: model 'y2.json' predicts y2; the data's target is y1\n"


def test_validation_loss_and_table(in_tmp):
    result = run("compare", DIABETES, "--val-frac", 0.2, "--epochs", 50)
    assert result.exit_code == 0, result.stderr
    assert "val loss" in result.stdout and "least squares (closed form)" in result.stdout
    assert "(L - L*)/L*, log scale" in result.stdout  # the curves
    doc = run_json("compare", DIABETES, "--val-frac", 0.2, "--epochs", 50)
    frame = pd.read_csv(DIABETES)
    X, y = frame.iloc[:, :-1].to_numpy(), frame.iloc[:, -1:].to_numpy()
    n_val = round(0.2 * len(frame))
    for row in [doc["reference"], *doc["rows"]]:
        # the held-out rows' squared errors and the training rows' add up to all the rows'
        sse = ((y - X @ np.array(row["weights"]) - row["bias"]) ** 2).sum()
        split = n_val * row["val_loss"] + (len(frame) - n_val) * row["final_loss"]
        assert split == pytest.approx(sse, rel=1e-9)


def test_divergent_configuration_is_ranked_last(in_tmp):
    doc = run_json("compare", DIABETES, "--lr", 0.1, "--lr", 5)
    assert doc["rows"][-1]["verdict"] == "diverged" and doc["rows"][-1]["lr"] == 5


def test_csv_and_png(in_tmp):
    pytest.importorskip("matplotlib")
    result = run("compare", NOTES, "-q", "-o", "c.csv", "--plot", "c.png")
    assert result.exit_code == 0 and result.stdout == ""
    with open(in_tmp / "c.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["kind"] == "optimum" and len(rows) == 5
    assert (in_tmp / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib(in_tmp, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = run("compare", NOTES, "--plot", "c.png")
    assert result.exit_code == 2 and "pip install 'babynn[plot]'" in result.stderr


BATCH = "Error: --batch-size takes a whole number of rows ≥ 1 or 'full'"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-b", "0"), f"{BATCH} (got '0')"),
        (("-b", "many"), f"{BATCH} (got 'many')"),
        (("--lr", "-1"), "Error: --lr must be a finite number above 0 (got -1)"),
        (
            ("--early-stopping", "--val-frac", "0"),
            "Error: --early-stopping needs a validation set: drop --val-frac 0",
        ),
    ],
)
def test_bad_options_exit_2(in_tmp, args, message):
    result = run("compare", NOTES, *args)
    assert result.exit_code == 2
    assert result.stderr == message + "\n"


def test_missing_model_file(in_tmp):
    result = run("compare", NOTES, "--model", "nope.json")
    assert result.exit_code == 1
    assert result.stderr == "Error: cannot read model file 'nope.json': no such file\n"
