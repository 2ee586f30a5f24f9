"""The multi-layer perceptron: backpropagation against finite differences, and what it can fit."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import central_differences

from babynn_cli.core.fit import fit
from babynn_cli.core.mlp import MLP
from babynn_cli.core.problem import initial_params, make_problem
from babynn_cli.core.schedules import make_schedule
from babynn_cli.core.train import TrainSettings
from babynn_cli.core.vocabulary import stack


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
@pytest.mark.parametrize(("m", "hidden", "n"), [(1, (3,), 1), (3, (5, 4), 2), (4, (2, 3, 2), 3)])
def test_backpropagation_matches_central_finite_differences(activation, m, hidden, n):
    rng = np.random.default_rng(m * 10 + len(hidden))
    X, Y = rng.normal(size=(9, m)), rng.normal(size=(9, n))
    model = MLP(m, hidden, n, activation)
    params = model.init_params(rng)
    if activation == "relu":  # keep every pre-activation away from the kink at 0
        for layer in range(1, model.depth + 1):
            params[f"b{layer}"] += 0.05 * np.sign(params[f"b{layer}"])
    _, grads = model.losses_and_grads(stack(params, 1), X, Y)
    numeric = central_differences(lambda p: model.losses(stack(p, 1), X, Y)[0], params)
    for name in params:
        np.testing.assert_allclose(
            grads[name][0], numeric[name], rtol=1e-6, atol=1e-8, err_msg=name
        )


def test_stacked_networks_are_computed_independently():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    model = MLP(3, (4,), 1, "tanh")
    singles = [model.init_params(rng) for _ in range(3)]
    stacked = {k: np.stack([p[k] for p in singles]) for k in singles[0]}
    losses, grads = model.losses_and_grads(stacked, X, Y)
    for k, p in enumerate(singles):
        loss_k, grads_k = model.losses_and_grads(stack(p, 1), X, Y)
        assert losses[k] == pytest.approx(loss_k[0], rel=1e-13)
        for name in p:
            np.testing.assert_allclose(grads[name][k], grads_k[name][0], rtol=1e-12)
        np.testing.assert_allclose(model.predict(p, X), model._forward(stacked, X)[1][-1][k])


def test_initialisation_variance_per_layer():
    model = MLP(50, (400, 400), 1, "tanh")
    params = model.init_params(np.random.default_rng(0))
    assert params["W1"].var() == pytest.approx(1 / 50, rel=0.05)
    assert params["W2"].var() == pytest.approx(1 / 400, rel=0.05)
    relu = MLP(50, (400, 400), 1, "relu").init_params(np.random.default_rng(0))
    assert relu["W1"].var() == pytest.approx(1 / 50, rel=0.05)  # its inputs are not relu's
    assert relu["W2"].var() == pytest.approx(2 / 400, rel=0.05)


def test_a_network_fits_a_nonlinear_rule_far_below_the_best_affine_fit():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(400, 2))
    Y = (np.sin(2 * X[:, 0]) + X[:, 1] ** 2)[:, None] + 0.05 * rng.normal(size=(400, 1))
    settings = TrainSettings(epochs=400, batch_size=16, tol=0)
    affine = make_problem(X, Y)
    optimum = affine.train.moments.optimum_loss  # the best affine fit
    net = make_problem(X, Y, hidden=(32,), activation="tanh")
    fitted = fit(net, initial_params(net, 0), make_schedule("constant", 0.05), settings, 0)
    assert fitted.train_loss < optimum / 20
    assert fitted.W is None and set(fitted.params) == {"W1", "b1", "W2", "b2"}


def test_no_hidden_layer_is_the_affine_model_to_the_last_digit():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 1))
    a = make_problem(X, Y)
    b = make_problem(X, Y, hidden=())
    settings = TrainSettings(epochs=30, batch_size=8)
    fa = fit(a, initial_params(a, 0), make_schedule("constant", 0.05), settings, 0)
    fb = fit(b, initial_params(b, 0), make_schedule("constant", 0.05), settings, 0)
    assert np.array_equal(fa.W, fb.W) and fa.train_loss == fb.train_loss
