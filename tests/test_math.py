"""The mathematics against references nobody here wrote: the notes' answer key, finite
differences, np.linalg.lstsq and numpy's eigenvalues."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import central_differences
from hypothesis import example, given, settings
from hypothesis import strategies as st

from babynn_cli.core.affine import AffineModel, from_raw_units, to_raw_units
from babynn_cli.core.descent import plain_descent
from babynn_cli.core.mlp import MLP
from babynn_cli.core.rows import Rows
from babynn_cli.core.scaling import Standardizer
from babynn_cli.core.schedules import (
    Constant,
    Cosine,
    Exponential,
    Inverse,
    Power,
    Step,
    make_schedule,
)
from babynn_cli.core.vocabulary import stack, unstack


def problem(N=7, m=3, n=2, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, m))
    Y = rng.normal(size=(N, n))
    model = AffineModel(m, n)
    params = model.init_params(rng)
    return model, params, X, Y


def test_init_draws_from_normal_with_variance_one_over_m():
    model = AffineModel(n_inputs=50, n_outputs=400)
    params = model.init_params(np.random.default_rng(0))
    draws = np.concatenate([params["W"].ravel(), params["w0"]])
    assert draws.mean() == pytest.approx(0.0, abs=0.005)
    assert draws.var() == pytest.approx(1 / 50, rel=0.02)
    zeros = model.init_params(np.random.default_rng(0), "zeros")
    assert not zeros["W"].any() and not zeros["w0"].any()


def test_gradients_match_the_answer_key_averaged_over_rows():
    """1.a-1.e for one pair (x, y): ∇L_ŷ = -2(y-ŷ), ∇L_W = -2(y-ŷ)xᵀ, ∇L_w0 = -2(y-ŷ)."""
    model, params, X, Y = problem()
    W, w0 = params["W"], params["w0"]
    grad_W = np.zeros_like(W)
    grad_w0 = np.zeros_like(w0)
    losses = []
    for x, y in zip(X, Y, strict=True):
        y_hat = W.T @ x + w0
        dL_dyhat = -2 * (y - y_hat)  # 1.a, in R^n
        grad_W += np.outer(dL_dyhat, x).T  # 1.d is n×m; W is m×n
        grad_w0 += dL_dyhat  # 1.e
        losses.append(np.sum((y - y_hat) ** 2))
    loss, grads = model.losses_and_grads(stack(params, 1), X, Y)
    assert loss[0] == pytest.approx(np.mean(losses), rel=1e-14)
    np.testing.assert_allclose(grads["W"][0], grad_W / len(X), rtol=1e-13)
    np.testing.assert_allclose(grads["w0"][0], grad_w0 / len(X), rtol=1e-13)


@pytest.mark.parametrize(
    "model", [AffineModel(3, 2), AffineModel(3, 2, intercept=False), MLP(3, (4,), 2, "tanh")]
)
def test_stacked_models_are_computed_independently(model):
    """K models side by side give each one's own loss, gradients and predictions."""
    _, _, X, Y = problem(N=11, m=3, n=2)
    rng = np.random.default_rng(7)
    singles = [model.init_params(rng) for _ in range(4)]
    stacked = {k: np.stack([p[k] for p in singles]) for k in singles[0]}
    losses, grads = model.losses_and_grads(stacked, X, Y)
    np.testing.assert_allclose(model.losses(stacked, X, Y), losses, rtol=1e-14)
    for k, p in enumerate(singles):
        loss_k, grads_k = model.losses_and_grads(stack(p, 1), X, Y)
        assert losses[k] == pytest.approx(loss_k[0], rel=1e-13)
        for name in p:
            np.testing.assert_allclose(grads[name][k], grads_k[name][0], rtol=1e-12)
            assert np.array_equal(unstack(stacked, k)[name], p[name])
        Y_k = model.predict(p, X)
        assert model.losses(stack(p, 1), X, Y)[0] == pytest.approx(((Y - Y_k) ** 2).sum() / 11)


@pytest.mark.parametrize("shape", [(5, 1, 1), (9, 3, 1), (12, 4, 3)])
@pytest.mark.parametrize("intercept", [True, False])
def test_gradients_match_central_finite_differences(shape, intercept):
    N, m, n = shape
    rng = np.random.default_rng(sum(shape))
    X, Y = rng.normal(size=(N, m)), rng.normal(size=(N, n))
    model = AffineModel(m, n, intercept)
    params = model.init_params(rng)
    _, grads = model.losses_and_grads(stack(params, 1), X, Y)
    numeric = central_differences(lambda p: model.losses(stack(p, 1), X, Y)[0], params)
    for name in params:
        np.testing.assert_allclose(grads[name][0], numeric[name], rtol=1e-7, atol=1e-9)
    assert ("w0" in grads) == intercept


def test_one_full_batch_step_is_exactly_the_update_rule():
    """W ← W - η∇L_W and w0 ← w0 - η∇L_w0, bit for bit, with the full-batch gradient."""
    from babynn_cli.core.train import TrainSettings, train

    model, params, X, Y = problem(N=20)
    data = as_design(X, Y)
    lr = 0.05
    settings = TrainSettings(epochs=1, tol=0)
    direct = DirectAffine(model.n_inputs, model.n_outputs)  # the loop's plain update
    _, grads = direct.losses_and_grads(stack(params, 1), X, Y)
    expected = {k: params[k] - lr * grads[k][0] for k in params}
    result = train(direct, params, data, [Constant(lr)], settings, np.random.default_rng(0))
    for k in params:
        assert np.array_equal(result.params[k][0], expected[k])
    assert result.history.train_loss[1, 0] == direct.losses(result.params, X, Y)[0]
    # from the moments, many epochs at once: the same step, to rounding
    _, moment_grads = model.full_batch(data)(stack(params, 1))
    for k in grads:
        np.testing.assert_allclose(moment_grads[k], grads[k], rtol=1e-12, atol=1e-14)
    fast = train(model, params, data, [Constant(lr)], settings, np.random.default_rng(0))
    for k in params:
        np.testing.assert_allclose(fast.params[k][0], expected[k], rtol=1e-14)
    assert fast.history.train_loss[1, 0] == pytest.approx(
        result.history.train_loss[1, 0], rel=1e-13
    )


def as_design(X, Y):
    """The rows as they are, unstandardised."""
    return Rows(X, Y, np.zeros(X.shape[1]), np.ones(X.shape[1]))


class DirectAffine(AffineModel):
    """The affine model computed the obvious way at full batch: X @ W, then Xᵀr, every epoch."""

    def full_batch(self, data):
        return lambda p: self.losses_and_grads(p, data.X, data.Y)

    def evaluator(self, data):
        return lambda p: self.losses(p, data.X, data.Y)

    def descent(self, data, batch_size, rng, epochs=None, runs=1, optimizer=None):
        return plain_descent(self, data, batch_size, rng, exact=True)  # the rule as written


@pytest.mark.parametrize("intercept", [True, False])
def test_moments_give_the_direct_iterates_and_losses(intercept):
    """Full-batch training from the data's moments against the direct computation."""
    from babynn_cli.core.train import TrainSettings, train

    rng = np.random.default_rng(11)
    X = rng.normal(size=(5000, 6)) * [1, 3, 10, 0.1, 1, 2] + [0, 5, -20, 1, 0, 3]
    Y = X @ rng.normal(size=(6, 2)) + 7 + rng.normal(size=(5000, 2)) * 0.01
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    settings = TrainSettings(epochs=300, tol=0)
    schedules = [Constant(0.05), Constant(0.2)]
    runs = []
    for cls in (AffineModel, DirectAffine):
        model = cls(6, 2, intercept)
        params = model.init_params(np.random.default_rng(0))
        data = as_design(X, Y)
        runs.append(train(model, params, data, schedules, settings, np.random.default_rng(0)))
    moments, direct = runs
    for name in moments.params:
        np.testing.assert_allclose(moments.params[name], direct.params[name], rtol=1e-12)
    np.testing.assert_allclose(
        moments.history.train_loss, direct.history.train_loss, rtol=1e-12, atol=0
    )


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (Constant(0.1), {0: 0.1, 1: 0.1, 1000: 0.1}),
        (Inverse(0.1, 0.5), {0: 0.1, 1: 0.1 / 1.5, 10: 0.1 / 6}),
        (Power(0.2, 1.0, 0.5), {0: 0.2, 3: 0.1, 8: 0.2 / 3}),
        (Exponential(1.0, 0.5), {0: 1.0, 1: 0.5, 3: 0.125}),
        (Step(1.0, 0.5, 10), {0: 1.0, 9: 1.0, 10: 0.5, 25: 0.25}),
        (Cosine(1.0, 0.0, 100), {0: 1.0, 50: 0.5, 100: 0.0, 150: 0.0}),
        (Cosine(1.0, 0.2, 4), {0: 1.0, 2: 0.6, 4: 0.2}),
    ],
)
def test_schedule_values(schedule, expected):
    for t, lr in expected.items():
        assert schedule(t) == pytest.approx(lr, rel=1e-12, abs=1e-15)


def test_schedule_conditions_of_the_notes():
    """Σ η = ∞ and Σ η² < ∞: 1/t meets both, a constant the first, a geometric series the second."""
    assert Inverse(0.1, 1.0).conditions().both
    assert not Constant(0.1).conditions().both
    assert Constant(0.1).conditions().sum_diverges
    assert Power(0.1, 1.0, 0.75).conditions().both
    assert not Power(0.1, 1.0, 0.5).conditions().sum_of_squares_converges
    assert not Power(0.1, 1.0, 1.5).conditions().sum_diverges
    assert not Exponential(0.1, 0.9).conditions().sum_diverges
    assert Exponential(0.1, 0.9).conditions().sum_of_squares_converges
    assert not Step(0.1, 0.5, 10).conditions().both
    assert not Cosine(0.1, 0.0, 10).conditions().both


def test_make_schedule_per_schedule_gamma_defaults():
    assert make_schedule("exponential", 1.0)(1) == 0.99
    assert make_schedule("step", 1.0, step_size=2)(2) == 0.5
    assert make_schedule("cosine", 1.0, total_updates=10)(10) == 0.0
    with pytest.raises(ValueError, match="unknown schedule"):
        make_schedule("nope", 1.0)


def test_raw_units_round_trip_and_predictions_agree():
    model, params, X, _ = problem(N=30, m=4, n=2)
    X = X * [1, 10, 100, 0.01] + [5, -3, 0, 2]
    scaler = Standardizer.fit(X)
    W, w0 = to_raw_units(params, scaler.mean, scaler.scale)
    raw = {"W": W, "w0": w0}
    np.testing.assert_allclose(
        model.predict(raw, X), model.predict(params, scaler.transform(X)), rtol=1e-12
    )
    back = from_raw_units(W, w0, scaler.mean, scaler.scale, intercept=True)
    np.testing.assert_allclose(back["W"], params["W"], rtol=1e-12)
    np.testing.assert_allclose(back["w0"], params["w0"], rtol=1e-12, atol=1e-12)


def test_standardizer_leaves_constant_columns_alone():
    X = np.column_stack([np.arange(5.0), np.full(5, 3.0)])
    z = Standardizer.fit(X).transform(X)
    assert np.all(np.isfinite(z))
    assert z[:, 0].mean() == pytest.approx(0) and z[:, 0].std() == pytest.approx(1)
    assert not z[:, 1].any()
    # without an intercept: no centring, unit root mean square
    z = Standardizer.fit(X, center=False).transform(X)
    np.testing.assert_allclose(np.sqrt((z**2).mean(axis=0)), [1, 1])


def test_curvature_matches_eigenvalues_of_the_explicit_hessian():
    """H = (2/N) X̃ᵀX̃ as the problem builds it from the moments, against numpy on X̃ itself."""
    from babynn_cli.core.problem import make_problem

    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 4)) * [1, 2, 3, 4] + 1
    Y = rng.normal(size=(50, 1))
    for intercept in (True, False):
        design = np.column_stack([X, np.ones(50)]) if intercept else X
        eig = np.linalg.eigvals(2 / 50 * design.T @ design).real
        c = make_problem(X, Y, standardize=False, intercept=intercept).curvature()
        assert c.lambda_max == pytest.approx(eig.max(), rel=1e-12)
        assert c.lambda_min == pytest.approx(eig.min(), rel=1e-9)
        assert c.stable_lr == pytest.approx(2 / eig.max(), rel=1e-12)
        assert c.suggested_lr <= c.best_lr < c.stable_lr
        assert c.suggested_lr >= 0.9 * c.best_lr
        assert math.isfinite(c.condition_number)


@pytest.mark.parametrize(("batch", "intercept", "n"), [(7, True, 1), (1, True, 2), (16, False, 1)])
def test_minibatch_epochs_as_products_of_maps_give_the_batch_by_batch_iterates(batch, intercept, n):
    """An epoch computed as one product of the batches' affine maps against w ← w - η∇L_w
    applied batch after batch (the generic loop), for several rates and a decaying schedule."""
    from babynn_cli.core.schedules import Inverse
    from babynn_cli.core.train import TrainSettings, train

    rng = np.random.default_rng(5)
    X = rng.normal(size=(61, 3)) * [1, 2, 0.5] + [0.3, -1, 2]  # 61 rows: a short last batch
    Y = X @ rng.normal(size=(3, n)) + 1 + 0.1 * rng.normal(size=(61, n))
    data = as_design(X, Y)
    schedules = [Constant(0.01), Constant(0.05), Inverse(0.03, 0.1)]
    settings = TrainSettings(epochs=4, batch_size=batch, tol=0)
    results = []
    for cls in (AffineModel, DirectAffine):
        model = cls(3, n, intercept)
        params = model.init_params(np.random.default_rng(0))
        results.append(train(model, params, data, schedules, settings, np.random.default_rng(1)))
    fast, plain = results
    for name in fast.params:
        np.testing.assert_allclose(fast.params[name], plain.params[name], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(fast.history.train_loss, plain.history.train_loss, rtol=1e-11)


@pytest.mark.parametrize(("batch", "intercept"), [(1, True), (3, True), (1, False)])
def test_per_sample_descent_is_the_update_applied_row_after_row(batch, intercept, descent_path):
    """Stochastic descent as babynn runs it (numpy: maps tracked over runs of batches, composed;
    or the compiled loop) against the notes' update written as a Python loop over the shuffled
    rows, one batch at a time: the same order from the same seed, the same iterates to 1e-12."""
    from babynn_cli.core.schedules import Inverse
    from babynn_cli.core.train import TrainSettings, train

    rng = np.random.default_rng(8)
    N, m = 301, 3  # several tracked maps, the last one and the last batch short
    X = rng.normal(size=(N, m)) * [1, 2, 0.5] + [0.3, -1, 2]
    Y = X @ rng.normal(size=(m, 1)) + 1 + 0.1 * rng.normal(size=(N, 1))
    schedules = [Constant(0.01), Inverse(0.02, 0.01)]
    model = AffineModel(m, 1, intercept)
    start = model.init_params(np.random.default_rng(0))
    settings = TrainSettings(epochs=3, batch_size=batch, tol=0)
    fast = train(model, start, as_design(X, Y), schedules, settings, np.random.default_rng(1))

    order_rng = np.random.default_rng(1)
    orders = [order_rng.permutation(N) for _ in range(3)]
    for run, schedule in enumerate(schedules):
        W, w0 = start["W"].copy(), start.get("w0", np.zeros(1)).copy()
        t = 0
        for order in orders:
            for lo in range(0, N, batch):
                idx = order[lo : lo + batch]
                eta = schedule.rates(np.array([t]))[0]
                residual = Y[idx] - (X[idx] @ W + w0)  # y − ŷ
                W = W + eta * 2 / len(idx) * X[idx].T @ residual  # W ← W − η∇L_W
                if intercept:
                    w0 = w0 + eta * 2 / len(idx) * residual.sum(axis=0)  # w0 ← w0 − η∇L_w0
                t += 1
        np.testing.assert_allclose(fast.params["W"][run], W, rtol=1e-12, atol=1e-12)
        if intercept:
            np.testing.assert_allclose(fast.params["w0"][run], w0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch", [1, 2, 5, 64, 500])
def test_the_compiled_loop_gives_the_numpy_iterates(batch, monkeypatch):
    """babynn[fast]'s compiled loop against numpy's batch maps (tracked and per batch): several
    runs at once, one of them stopping, two outputs, raw columns standardised on the fly."""
    from babynn_cli.core import compiled
    from babynn_cli.core.schedules import Inverse
    from babynn_cli.core.train import TrainSettings, train

    if compiled.kernel() is None:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(compiled, "pays", lambda *_: True)  # whatever the run
    rng = np.random.default_rng(9)
    X = rng.normal(size=(403, 4)) * [1, 20, 0.5, 3] + [5, -1, 2, 100]
    Y = X @ rng.normal(size=(4, 2)) + 1 + 0.1 * rng.normal(size=(403, 2))
    data = Rows(X, Y, X.mean(axis=0), X.std(axis=0))
    schedules = [Constant(0.002), Inverse(0.01, 0.01), Constant(0.5)]  # the last one diverges
    settings = TrainSettings(epochs=4, batch_size=batch, tol=0)
    results = {}
    for path in ("compiled", "numpy"):
        if path == "numpy":
            monkeypatch.setattr(compiled, "kernel", lambda: None)
        model = AffineModel(4, 2)
        start = model.init_params(np.random.default_rng(0))
        results[path] = train(model, start, data, schedules, settings, np.random.default_rng(1))
    fast, plain = results["compiled"], results["numpy"]
    assert fast.runs == plain.runs
    for name in ("W", "w0"):
        np.testing.assert_allclose(fast.params[name][:2], plain.params[name][:2], rtol=1e-12)
    losses = fast.history.train_loss[:, :2], plain.history.train_loss[:, :2]
    np.testing.assert_allclose(*losses, rtol=1e-11)  # near L*, a loss magnifies weights' rounding


def test_curvature_from_the_rows_of_wide_data_is_the_hessians():
    """Fewer rows than columns: the N × N dual gives H's non-zero eigenvalues, its eigenvectors,
    and the same predicted epochs as the p × p Hessian, against numpy on X̃ᵀX̃ itself."""
    from babynn_cli.core.theory import Curvature

    rng = np.random.default_rng(4)
    Z = np.column_stack([rng.normal(size=(12, 40)), np.ones(12)])
    full, dual = Curvature.of(Z.T @ Z / 12), Curvature.of_rows(Z)
    nonzero = np.sort(np.linalg.eigvalsh(2 / 12 * Z.T @ Z))[-12:]
    np.testing.assert_allclose(dual.eigenvalues, nonzero, rtol=1e-10)
    assert dual.singular and full.singular
    assert dual.lambda_min == pytest.approx(full.lambda_min, rel=1e-9)
    assert dual.best_lr == pytest.approx(full.best_lr, rel=1e-9)
    H = 2 / 12 * Z.T @ Z
    np.testing.assert_allclose(
        H @ dual.eigenvectors, dual.eigenvectors * dual.eigenvalues, atol=1e-9
    )
    error = rng.normal(size=(41, 2))
    assert dual.excess_loss(error) == pytest.approx(0.5 * np.einsum("ij,ik,kj->", error, H, error))
    assert dual.epochs_to_reach(error, dual.best_lr, 1e-6) == full.epochs_to_reach(
        error, full.best_lr, 1e-6
    )


@pytest.mark.parametrize("block", [1, 7, 64, 1000])
def test_moments_from_blocks_equal_the_in_memory_moments(block):
    """Streamed (merged block by block, after one shift) against in-memory moments, on awkward
    data: a column with mean 10⁶ and spread 1, many blocks and a short last one."""
    from babynn_cli.core.moments import Moments

    rng = np.random.default_rng(8)
    X = rng.normal(size=(1001, 3)) * [1.0, 3.0, 0.01] + [1e6, -5.0, 2.0]
    Y = X @ [[1.0, 0.5], [-2.0, 0.0], [30.0, 1.0]] + rng.normal(size=(1001, 2))

    def blocks():
        for lo in range(0, len(X), block):
            yield X[lo : lo + block], Y[lo : lo + block]

    streamed, whole = Moments.of_blocks(blocks), Moments.of(X, Y)
    assert streamed.n_rows == whole.n_rows == 1001
    np.testing.assert_allclose(streamed.x_mean, whole.x_mean, rtol=1e-15)
    np.testing.assert_allclose(streamed.xx, whole.xx, rtol=1e-12)
    np.testing.assert_allclose(streamed.W_star, whole.W_star, rtol=1e-11)
    assert streamed.optimum_loss == pytest.approx(whole.optimum_loss, rel=1e-12)
    assert streamed.spread == pytest.approx(whole.spread, rel=1e-12)
    # and both against a two-pass reference in extended precision
    Xc = X.astype(np.longdouble) - X.astype(np.longdouble).mean(axis=0)
    reference = (Xc.T @ Xc / len(X)).astype(float)
    # a covariance's error is measured against the two columns' spread, √(xxᵢᵢ·xxⱼⱼ), not its
    # own size (an off-diagonal entry can be near 0 while its columns are not)
    spread = np.sqrt(np.outer(np.diag(reference), np.diag(reference)))
    assert (np.abs(streamed.xx - reference) / spread).max() < 1e-13


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(-300, 300),
    st.integers(0, 2**32 - 1),
    st.sampled_from([1, 7, 40_000]),
)
@example(1, 153, 0, 40_000)  # squares near 1e304: their sum overflows, their mean does not
def test_mse_and_r2_are_numpys_at_any_scale(n, exponent, seed, rows):
    """The loss and R² that fit and predict print, summed a block of rows at a time and scaled
    only past 2⁴⁰⁰, against numpy's formulas in long double on the data divided by its scale
    (the same numbers, never overflowing): to a few ulps at any size from 1e-300 to 1e300."""
    from babynn_cli.core.vocabulary import mse, r2_per_output

    rng = np.random.default_rng(seed)
    scale = 10.0**exponent
    base = rng.normal(size=(rows, n))
    Y, Y_hat = base * scale, (base + rng.normal(size=(rows, n)) * 0.1) * scale
    R = (Y / scale).astype(np.longdouble) - (Y_hat / scale).astype(np.longdouble)
    expected_mse = (R * R).sum(axis=1).mean() * np.longdouble(scale) ** 2
    got = mse(Y, Y_hat)
    if np.isfinite(float(expected_mse)) and float(expected_mse) > 1e-290:
        assert got == pytest.approx(float(expected_mse), rel=1e-12)
    if rows > 1:
        C = (Y / scale).astype(np.longdouble)
        C = C - C.mean(axis=0)
        expected_r2 = 1 - (R * R).sum(axis=0) / (C * C).sum(axis=0)
        np.testing.assert_allclose(r2_per_output(Y, Y_hat), expected_r2.astype(float), rtol=1e-9)
