"""Fewer rows than features: the moments are kept as the rows (`core.lowrank`), never m × m, and
every figure is the one the m × m moments give, checked against np.linalg.lstsq and the rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import run, run_json

from babynn_cli.core.lowrank import LowRank
from babynn_cli.core.moments import Moments


def _wide(N: int, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, m)) * rng.uniform(0.1, 10.0, size=m) + rng.normal(size=m) * 5
    Y = np.column_stack([X[:, :3].sum(axis=1), X[:, 3] - X[:, 4]]) + rng.normal(size=(N, 2))
    return X, Y


def test_the_rows_moments_are_the_dense_moments():
    """Every figure the moments give (W*, L*, variances, the loss of any weights and its
    gradient, the rescaled moments) equals the same figure from the rows directly."""
    X, Y = _wide(7, 40)
    mo = Moments.of(X, Y)
    assert mo.low_rank and isinstance(mo.xx, LowRank)
    N = len(X)
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    np.testing.assert_allclose(mo.xx.dense(), Xc.T @ Xc / N, atol=1e-12)
    # the least-squares fit of least norm (np.linalg.pinv's default cut, 1e-15, would keep the
    # centring's rounding as a fifth direction: lstsq cuts at m·ε)
    W_ref = np.linalg.lstsq(Xc, Yc, rcond=None)[0]
    W, w0, loss = mo.optimum(True)
    np.testing.assert_allclose(W, W_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(w0, Y.mean(axis=0) - X.mean(axis=0) @ W_ref, rtol=1e-9)
    assert loss == pytest.approx(0.0, abs=1e-20)  # 7 rows, 40 features: an exact fit
    assert not mo.unique
    np.testing.assert_allclose(mo.variance, X.var(axis=0), rtol=1e-12)
    rng = np.random.default_rng(1)
    Wk, bk = rng.normal(size=(40, 2)), rng.normal(size=2)
    direct = ((Y - X @ Wk - bk) ** 2).mean(axis=0)
    total, r2 = mo.loss_and_r2({"W": Wk, "w0": bk})
    assert total == pytest.approx(direct.sum(), rel=1e-10)
    np.testing.assert_allclose(r2, 1 - direct / Y.var(axis=0), rtol=1e-10)
    losses, grads = mo.losses_and_grads({"W": Wk[None], "w0": bk[None]})
    R = X @ Wk + bk - Y  # ∇L_W = (2/N) Xᵀ(ŷ − y), ∇L_w0 = (2/N) Σ (ŷ − y): answers 1.d, 1.e
    np.testing.assert_allclose(grads["W"][0], 2 / N * X.T @ R, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(grads["w0"][0], 2 / N * R.sum(axis=0), rtol=1e-9, atol=1e-12)
    assert losses[0] == pytest.approx(direct.sum(), rel=1e-10)
    scale, mean = X.std(axis=0), X.mean(axis=0)
    Z = (X - mean) / scale
    np.testing.assert_allclose(
        mo.scaled(mean, scale).xx.dense(), np.cov(Z.T, bias=True), atol=1e-12
    )
    # through the origin: the fit of least norm of y on x itself
    W0, _, _ = mo.optimum(False)
    np.testing.assert_allclose(W0, np.linalg.lstsq(X, Y, rcond=None)[0], rtol=1e-8, atol=1e-12)


def _csv(path: str, N: int, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, Y = _wide(N, m, seed)
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(m)])
    frame["y"] = Y[:, 0]
    frame.to_csv(path, index=False)
    return X, Y[:, :1]


def test_five_rows_by_five_thousand_columns_train_to_the_least_norm_fit(in_tmp):
    """The hostile case of issue 25 (5 rows × 10,000 columns never finished): the rows' own
    moments make it a small problem, trained to the least-squares fit of least norm."""
    X, Y = _csv("wide.csv", 5, 5000)
    doc = run_json("fit", "wide.csv", "-o", "m.json", "--gap-tol", "1e-14")
    assert doc["verdict"] == "converged"
    Xc = X - X.mean(axis=0)
    W_ref = np.linalg.lstsq(Xc, Y - Y.mean(axis=0), rcond=None)[0]
    model = json.loads((in_tmp / "m.json").read_text())
    W = np.array(model["model"]["weights"])
    # converged to a gap of 1e-14 of the variance: the weights are the least-norm fit's
    assert np.linalg.norm(W - W_ref) <= 1e-6 * np.linalg.norm(W_ref)
    assert doc["epochs_run"] == doc["epochs_predicted"]
    assert run("predict", "m.json", "wide.csv", "-o", "p.csv").exit_code == 0
    predicted = pd.read_csv("p.csv")["y"].to_numpy()
    np.testing.assert_allclose(predicted, Y[:, 0], atol=1e-2 * Y.std())
    table = run("fit", "wide.csv", "--epochs", "3").stdout
    assert "… 4,960 more" in table and "--json lists every weight" in table


def test_what_wide_data_cannot_do_is_one_line(in_tmp, monkeypatch):
    """Streamed, the rows are not at hand: past MAX_FEATURES the run is refused naming the way;
    as many rows as features past it too; --l2's ridge reference solves with m × m."""
    import babynn_cli.core.moments as moments

    monkeypatch.setattr(moments, "MAX_FEATURES", 30)
    _csv("wide.csv", 8, 31)
    result = run("fit", "wide.csv", "--stream")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "31 features:" in result.stderr and "without --stream" in result.stderr
    _csv("tall.csv", 40, 31)
    result = run("fit", "tall.csv")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "unless there are fewer rows than features" in result.stderr
    result = run("fit", "wide.csv", "--l2", "0.1")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "--l2" in result.stderr and "drop --l2" in result.stderr
    assert run("fit", "wide.csv", "-q").exit_code == 0


def test_wide_classes_are_separable_and_said_so(in_tmp):
    """Too many weights for Newton's method, and fewer rows than weights: any labels are
    separable (X̃ has rank N), so the loss has no minimum and the run is not called converged."""
    X, _ = _csv("wide.csv", 12, 2500)
    frame = pd.read_csv("wide.csv")
    frame["y"] = np.where(X[:, 0] > np.median(X[:, 0]), "up", "down")
    frame.to_csv("classes.csv", index=False)
    doc = run_json("fit", "classes.csv")
    assert doc["verdict"] == "still falling" and doc["optimum_loss"] is None
    assert doc["accuracy"] == 1.0
    text = run("fit", "classes.csv").stderr
    assert "the classes are separable" in text


def test_wide_features_of_any_size_train_in_units_of_their_own(in_tmp):
    """Columns at 1e200 and 1e150 beside ordinary ones (and a near-constant one at 1e17): their
    squares leave double precision, so the rows' moments keep them in power-of-two units, as the
    m × m moments do; the run converges in the epochs predicted, and predict agrees."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 20))
    X[:, 1] *= 1e200
    X[:, 2] *= 1e150
    X[:, 3] = X[:, 3] * 1e-3 + 1e17
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(20)])
    frame["y"] = X[:, 0] + 0.1 * rng.normal(size=6)
    frame.to_csv("huge.csv", index=False)
    doc = run_json("fit", "huge.csv", "-o", "m.json")
    assert doc["verdict"] == "converged" and doc["epochs_run"] == doc["epochs_predicted"]
    scores = run_json("predict", "m.json", "huge.csv")
    assert scores["r2"][0] == pytest.approx(doc["r2"][0], rel=1e-9)
    assert doc["r2"][0] > 1 - 1e-5  # six rows, twenty features: an exact fit, to the gap asked


def test_a_ridge_on_fewer_rows_than_features_is_its_closed_form(in_tmp):
    """--l2 on 8 rows × 30 features (the rows' moments, made m × m for the ridge's solve): the
    weights trained are (ZᵀZ/N + αI)⁻¹Zᵀy/N on the standardised, centred rows."""
    X, Y = _csv("wide.csv", 8, 30)
    alpha = 0.1
    doc = run_json("fit", "wide.csv", "--l2", alpha, "--gap-tol", "1e-12", "-o", "m.json")
    assert doc["verdict"] == "converged"
    mean, scale = X.mean(axis=0), X.std(axis=0)
    Z, y = (X - mean) / scale, Y[:, 0] - Y[:, 0].mean()
    N = len(Z)
    w = np.linalg.solve(Z.T @ Z / N + alpha * np.eye(30), Z.T @ y / N)
    W = np.array(json.loads((in_tmp / "m.json").read_text())["model"]["weights"])[:, 0]
    # a gap of 1e-12 of L* leaves an error near √(1e-12 · L*/λmin), λmin ≥ 2α
    assert np.linalg.norm(W * scale - w) <= 1e-5 * np.linalg.norm(w)
