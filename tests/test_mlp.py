"""The multi-layer perceptron: backpropagation against finite differences, and what it can fit."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import central_differences

from babynn_cli.core.affine import AffineModel
from babynn_cli.core.fitted import fit
from babynn_cli.core.mlp import MLP
from babynn_cli.core.problem import initial_params, make_problem
from babynn_cli.core.rows import Rows
from babynn_cli.core.schedules import make_schedule
from babynn_cli.core.train import TrainSettings, train
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


@pytest.mark.parametrize("batch_size", [None, 8])
def test_a_network_with_no_hidden_layer_is_the_affine_model(batch_size):
    """MLP(m, (), n) is ŷ = W1ᵀx + b1: from the same draws, trained on the same rows in the same
    order, it follows the affine model's iterates (each by its own code path: backpropagation
    through one layer against the affine model's moments or batch maps)."""
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 2))
    rows = Rows(X, Y, np.zeros(3), np.ones(3))
    settings = TrainSettings(epochs=30, batch_size=batch_size, tol=0)
    schedules = [make_schedule("constant", 0.05), make_schedule("inverse", 0.2)]
    affine, network = AffineModel(3, 2), MLP(3, (), 2)
    a = affine.init_params(np.random.default_rng(0))
    w = network.init_params(np.random.default_rng(0))
    assert np.array_equal(a["W"], w["W1"]) and np.array_equal(a["w0"], w["b1"])  # same draws
    fa = train(affine, a, rows, schedules, settings, np.random.default_rng(2))
    fw = train(network, w, rows, schedules, settings, np.random.default_rng(2))
    np.testing.assert_allclose(fw.params["W1"], fa.params["W"], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(fw.params["b1"], fa.params["w0"], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(fw.history.train_loss, fa.history.train_loss, rtol=1e-11)
