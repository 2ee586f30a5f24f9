"""The closed-form reference against designs whose answers are known exactly.

Each design is built here from integers, so the data, the coefficients and the targets are exact
in double precision: whatever error remains is the solver's. The bound tested is 10·κ·u, with
u = 2⁻⁵³ and κ the condition number of the centred design with unit-norm columns (what a
backward-stable least-squares solver is guaranteed for a problem with zero residual: error ≲ κ·u,
times a small constant): the normal equations, babynn's former reference row, miss it by 10⁴ to
10¹⁶, and a solve by QR alone sits just inside it. babynn's refinement gets past it — to the exact
coefficients on every design here but the κ = 10⁷ one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import run_json

from babynn_cli.core.moments import Moments, least_squares

U = 2.0**-53


def powers(x: np.ndarray, degree: int) -> np.ndarray:
    return np.column_stack([x**k for k in range(1, degree + 1)])


def kappa(X: np.ndarray) -> float:
    """κ of the centred design with unit-norm columns."""
    Xc = X - X.mean(axis=0)
    return float(np.linalg.cond(Xc / np.sqrt((Xc**2).sum(axis=0))))


def worst_error(X: np.ndarray, coefficients: np.ndarray) -> float:
    """The largest relative error of the intercept and weights babynn finds for y = c0 + Xc."""
    y = coefficients[0] + X @ coefficients[1:]
    assert np.all(np.abs(y) < 2.0**53), "the targets must be exact"
    fit = least_squares(X, y[:, None])
    found = np.concatenate([fit.w0, fit.W[:, 0]])
    return float(np.max(np.abs(found - coefficients) / np.abs(coefficients)))


TEN = [3, -2, 1, 4, -1, 2, -3, 1, 2, -1, 1]
DESIGNS = {
    # NIST's Wampler1 in integers: x = 0…20, columns x…x⁵
    "degree 5 on 0..20": (powers(np.arange(21.0), 5), [1, -2, 3, -1, 2, 1]),
    "degree 10 on -10..10": (powers(np.arange(-10.0, 11.0), 10), TEN),
    "degree 10 on 0..20 (κ ≈ 1e7)": (powers(np.arange(21.0), 10), TEN),
    # columns like 10⁸ + noise: the common offset must cost the noise none of its digits
    "offset 1e8": (
        1e8 + np.random.default_rng(0).integers(-1000, 1000, size=(500, 3)).astype(float),
        [5, 2, -1, 3],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(DESIGNS))
def test_exact_designs_are_solved_within_what_their_condition_allows(name):
    X, coefficients = DESIGNS[name]
    error = worst_error(X, np.array(coefficients, dtype=float))
    assert error <= 10 * kappa(X) * U, f"{name}: {-math.log10(max(error, 1e-17)):.1f} digits"


@pytest.mark.parametrize("name", ["degree 5 on 0..20", "degree 10 on -10..10", "offset 1e8"])
def test_refinement_recovers_the_exact_coefficients(name):
    """One step with the residual carried to twice double precision: every digit."""
    X, coefficients = DESIGNS[name]
    assert worst_error(X, np.array(coefficients, dtype=float)) == 0.0


def test_the_loss_is_the_exact_sum_of_squared_residuals():
    """L* against math.fsum of the residuals at the weights found, for data with noise."""
    rng = np.random.default_rng(1)
    X = powers(rng.uniform(0, 10, 300), 4) + 1e3
    y = 2 + X @ [1.0, -0.5, 0.03, -0.001] + rng.normal(size=300)
    fit = least_squares(X, y[:, None])
    residual = y - (X @ fit.W[:, 0] + fit.w0[0])
    assert fit.loss == pytest.approx(math.fsum(residual**2) / 300, rel=1e-12)


def test_blocks_merge_to_the_in_memory_solution():
    """The triangle gathered block by block (a stream's blocks, a cluster's partitions), with the
    first row as the shift, gives the in-memory coefficients and L*."""
    X, coefficients = DESIGNS["degree 5 on 0..20"]
    rng = np.random.default_rng(2)
    X = np.vstack([X] * 5)
    y = (coefficients[0] + X @ coefficients[1:] + rng.integers(-3, 4, len(X)))[:, None] * 1.0
    whole = Moments.of(X, y)
    blocks = Moments.of_blocks(
        lambda: ((X[lo : lo + 7], y[lo : lo + 7]) for lo in range(0, 105, 7))
    )
    for intercept in (True, False):
        a, b = whole.optimum(intercept), blocks.optimum(intercept)
        np.testing.assert_allclose(b[0], a[0], rtol=1e-12)
        np.testing.assert_allclose(b[1], a[1], rtol=1e-12, atol=1e-9)
        assert b[2] == pytest.approx(a[2], rel=1e-12)


def test_rows_reduced_on_several_threads_give_the_one_thread_triangle(monkeypatch):
    """Many rows are cut into one part per core, each part's triangle found on its own thread:
    the moments, the least-squares fit and L* are those of one thread, to rounding, and match
    np.linalg.lstsq."""
    import babynn_cli.core.moments as moments

    rng = np.random.default_rng(5)
    X = rng.normal(3.0, 2.0, (300_000, 4)) @ rng.normal(size=(4, 4))
    y = X @ rng.normal(size=(4, 2)) + rng.normal(size=(300_000, 2))
    monkeypatch.setattr(moments, "cores", lambda: 1)
    one = Moments.of(X, y)
    monkeypatch.setattr(moments, "cores", lambda: 3)
    three = Moments.of(X, y)
    np.testing.assert_allclose(three.xx, one.xx, rtol=1e-13)
    np.testing.assert_allclose(three.W_star, one.W_star, rtol=1e-12)
    assert three.optimum_loss == pytest.approx(one.optimum_loss, rel=1e-13)
    design = np.column_stack([np.ones(len(X)), X])
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(three.W_star, solution[1:], rtol=1e-9)
    np.testing.assert_allclose(three.w0_star, solution[0], rtol=1e-9)


def test_through_the_origin_an_exact_polynomial_is_recovered():
    X = powers(np.arange(1.0, 22.0), 5)
    coefficients = np.array([2.0, -1, 3, -2, 1])
    y = X @ coefficients
    W, w0, loss = Moments.of(X, y[:, None]).optimum(False)
    np.testing.assert_array_equal(w0, [0.0])
    assert np.max(np.abs(W[:, 0] - coefficients) / np.abs(coefficients)) <= 10 * kappa(X) * U
    assert loss == pytest.approx(0.0, abs=1e-20)


def test_collinear_features_get_the_optimum_of_least_norm_and_say_it_is_not_unique(tmp_path):
    """x3 = x1 + x2 exactly: many weights reach L*; the one of least norm, as numpy's lstsq
    (SVD) gives it on the centred columns, and a note that the optimum is not unique."""
    rng = np.random.default_rng(3)
    a, b = rng.integers(-50, 50, (2, 200)).astype(float)
    X = np.column_stack([a, b, a + b])
    y = 1.5 + 2 * a - b + rng.normal(size=200)
    fit = least_squares(X, y[:, None])
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    minimum_norm = np.linalg.lstsq(Xc, yc, rcond=None)[0]
    np.testing.assert_allclose(fit.W[:, 0], minimum_norm, rtol=1e-10)
    assert not Moments.of(X, y[:, None]).unique
    path = tmp_path / "collinear.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="a,b,c,y", comments="")
    report = run_json("compare", path, "-b", "full", "--epochs", "5")
    assert report["reference"]["unique"] is False
    np.testing.assert_allclose(
        np.array(report["reference"]["weights"])[:, 0], minimum_norm, rtol=1e-10
    )
    fitted = run_json("fit", path, "--epochs", "5", "-o", tmp_path / "m.json")
    assert fitted["optimum_unique"] is False


def test_fit_and_compare_share_one_reference(tmp_path):
    """fit's L* and compare's reference row come from the same solver: the same numbers."""
    from conftest import DIABETES

    fitted = run_json("fit", DIABETES, "--epochs", "3", "-o", tmp_path / "m.json")
    compared = run_json("compare", DIABETES, "-b", "full", "--epochs", "3")
    assert compared["reference"]["final_loss"] == fitted["optimum_loss"]
