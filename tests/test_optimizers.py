"""The update rules beside the notes' (`core.optimizers`): each against a plain Python loop of its
textbook rule, and the fast paths against the rule as written."""

from __future__ import annotations

import math

import numpy as np
import pytest

from babynn_cli.core.affine import AffineModel
from babynn_cli.core.descent import (
    BatchMapDescent,
    MinibatchDescent,
    MomentDescent,
    plain_descent,
)
from babynn_cli.core.optimizers import OPTIMIZERS, OptimizerSpec
from babynn_cli.core.rows import Rows
from babynn_cli.core.schedules import Constant
from babynn_cli.core.train import TrainSettings, train

SPECS = {
    "gd": OptimizerSpec("gd"),
    "momentum": OptimizerSpec("momentum", momentum=0.8),
    "nesterov": OptimizerSpec("nesterov", momentum=0.7),
    "adam": OptimizerSpec("adam", beta1=0.85, beta2=0.99, eps=1e-7),
}


def textbook(name: str, w: list[float], grad, lr: float, steps: int) -> list[float]:
    """The rule as a textbook writes it, one float at a time, on a loss whose gradient at w is
    grad(w)."""
    spec = SPECS[name]
    v = [0.0] * len(w)
    m = [0.0] * len(w)
    s = [0.0] * len(w)
    for t in range(1, steps + 1):
        g = grad(w)
        for i in range(len(w)):
            if name == "gd":
                w[i] = w[i] - lr * g[i]
            elif name == "momentum":
                v[i] = spec.momentum * v[i] - lr * g[i]
                w[i] = w[i] + v[i]
            elif name == "nesterov":
                v[i] = spec.momentum * v[i] - lr * g[i]
                w[i] = w[i] + spec.momentum * v[i] - lr * g[i]
            else:
                m[i] = spec.beta1 * m[i] + (1 - spec.beta1) * g[i]
                s[i] = spec.beta2 * s[i] + (1 - spec.beta2) * g[i] * g[i]
                m_hat = m[i] / (1 - spec.beta1**t)
                s_hat = s[i] / (1 - spec.beta2**t)
                w[i] = w[i] - lr * m_hat / (math.sqrt(s_hat) + spec.eps)
    return w


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_rule_is_its_textbook_loop(name):
    """Two stacked runs at two rates on a quadratic with a fixed Hessian: every iterate of each
    run is the plain loop's, to 1e-12."""
    rng = np.random.default_rng(3)
    A = rng.normal(size=(4, 4))
    H = A @ A.T / 4 + 0.1 * np.eye(4)
    b = rng.normal(size=4)
    w0 = rng.normal(size=4)
    rates = np.array([0.05, 0.2])

    def grad(w):
        return list(H @ np.asarray(w) - b)

    optimizer = SPECS[name].start()
    params = {"W": np.stack([w0, w0])[:, :, None]}  # (K, 4, 1)
    for _ in range(40):
        g = {"W": np.einsum("ij,kjl->kil", H, params["W"]) - b[None, :, None]}
        params = optimizer.step(params, g, rates)
    for k, lr in enumerate(rates):
        expected = textbook(name, list(w0), grad, float(lr), 40)
        np.testing.assert_allclose(params["W"][k, :, 0], expected, rtol=1e-12, atol=1e-14)


def _data(seed: int = 11):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 4)) * [1, 3, 0.5, 2] + [0, 5, -2, 1]
    Y = X @ rng.normal(size=(4, 2)) + 3 + rng.normal(size=(400, 2)) * 0.1
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return Rows(X, Y, np.zeros(4), np.ones(4))


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
@pytest.mark.parametrize("intercept", [True, False])
def test_moment_descent_with_momentum_is_the_plain_rule(name, intercept):
    """Full batch from the moments (velocity in state coordinates) against the rule as written
    on the rows: the same iterates and losses, to 1e-12, two rates at once."""
    spec = SPECS[name]
    model = AffineModel(4, 2, intercept)
    data = _data()
    start = model.init_params(np.random.default_rng(0))
    stacked = {k: np.stack([v, v]) for k, v in start.items()}
    lr = np.array([0.05, 0.3])

    def rates(t0, count):
        return np.tile(lr, (count, 1))

    fast = MomentDescent(data.moments, intercept, spec)
    plain = plain_descent(model, data, None, np.random.default_rng(0), False, spec)
    assert not isinstance(plain, MomentDescent)
    np.testing.assert_allclose(fast.restart(stacked), plain.restart(stacked), rtol=1e-12)
    fast_epochs = list(fast.epochs(1, 60, rates))
    plain_epochs = list(plain.epochs(1, 60, rates))
    fast_losses = np.concatenate([e.losses for e in fast_epochs])
    plain_losses = np.concatenate([e.losses for e in plain_epochs])
    np.testing.assert_allclose(fast_losses, plain_losses, rtol=1e-12)
    last = fast_epochs[-1].params[len(fast_epochs[-1].params) - 1]
    for key, value in plain_epochs[-1].params[0].items():
        np.testing.assert_allclose(last[key], value, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_training_chooses_a_path_that_keeps_the_rule(name):
    """The loop trains with the rule asked for on every path: full batch (moments for gd and
    momentum), minibatches (the rule as written): a stopped run stays where it stopped."""
    spec = SPECS[name]
    model = AffineModel(4, 2, True)
    data = _data(5)
    for batch in (None, 32):
        descent = model.descent(data, batch, np.random.default_rng(0), 10, 2, spec)
        if batch is not None and spec.name == "adam":
            assert isinstance(descent, MinibatchDescent)
        elif batch is not None and spec.heavy:
            assert isinstance(descent, BatchMapDescent)
        settings = TrainSettings(epochs=30, batch_size=batch, tol=0, optimizer=spec)
        params = model.init_params(np.random.default_rng(1))
        result = train(
            model, params, data, [Constant(0.01), Constant(0.05)], settings,
            np.random.default_rng(2),
        )  # fmt: skip
        losses = result.history.train_loss
        assert np.all(np.isfinite(losses)) and np.all(losses[-1] < losses[0])


def _problem(kappa_scale: float = 30.0):
    from babynn_cli.core.problem import make_problem

    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 3)) @ np.diag([1.0, 1.0, 1.0])
    X[:, 2] = X[:, 1] + X[:, 2] / kappa_scale  # two features nearly alike: κ in the hundreds
    Y = X @ np.array([[1.0], [-2.0], [0.5]]) + 4 + rng.normal(size=(300, 1)) * 0.3
    return make_problem(X, Y)


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_momentum_theory_predicts_the_measured_loss_epoch_by_epoch(name):
    """L − L* after every epoch at full batch, measured (moments, velocity in state coordinates)
    and predicted by the per-direction 2 × 2 recurrences, agree to 1e-9 relative; past the
    stability bound theory predicts no epoch and the loss grows."""
    from babynn_cli.core.fitted import train_problem
    from babynn_cli.core.problem import initial_params

    problem = _problem()
    curvature = problem.curvature()
    assert curvature.condition_number > 100
    nesterov = name == "nesterov"
    lr, beta = curvature.polyak() if not nesterov else (1.0 / curvature.lambda_max, 0.8)
    spec = OptimizerSpec(name, momentum=beta)
    params = initial_params(problem, 0)
    settings = TrainSettings(epochs=150, tol=0, optimizer=spec, history_every=1)
    result = train_problem(problem, params, [Constant(lr)], settings, 0)
    measured = result.history.train_loss[:, 0] - problem.optimum_loss
    predicted = curvature.momentum_gaps(problem.error(params), lr, beta, 150, nesterov)
    np.testing.assert_allclose(measured[:30], predicted[:30], rtol=1e-9)
    big = predicted > 1e-9 * predicted[0]  # (below that, rounding of L* itself is the gap)
    np.testing.assert_allclose(measured[big], predicted[big], rtol=1e-7)
    target = 1e-6 * problem.optimum_loss
    epochs = curvature.momentum_epochs_to_reach(problem.error(params), lr, beta, target, 10**5,
                                                nesterov)  # fmt: skip
    assert epochs is not None
    gaps = curvature.momentum_gaps(problem.error(params), lr, beta, epochs, nesterov)
    assert gaps[epochs] <= target < gaps[epochs - 1]
    unstable = 1.01 * curvature.momentum_stable_lr(beta, nesterov)
    assert curvature.momentum_epochs_to_reach(problem.error(params), unstable, beta, target,
                                              nesterov=nesterov) is None  # fmt: skip
    gaps = curvature.momentum_gaps(problem.error(params), unstable, beta, 3000, nesterov)
    assert gaps[-1] > 10 * gaps[0]


def test_polyaks_pair_needs_about_root_kappa_fewer_epochs():
    """The optimal heavy ball against plain descent at η*, both by theory on one problem."""
    problem = _problem(100.0)
    curvature = problem.curvature()
    assert curvature.condition_number > 1e4
    from babynn_cli.core.problem import initial_params

    error = problem.error(initial_params(problem, 0))
    target = 1e-6 * problem.optimum_loss
    plain = curvature.epochs_to_reach(error, curvature.best_lr, target)
    lr, beta = curvature.polyak()
    heavy = curvature.momentum_epochs_to_reach(error, lr, beta, target)
    assert plain is not None and heavy is not None
    assert heavy * 5 <= plain, (heavy, plain, curvature.condition_number)


def test_fit_with_momentum_and_no_other_option_converges_in_the_epochs_theory_predicts(in_tmp):
    """`fit --optimizer momentum` (and nesterov): theory's rate and β, its epochs predicted in the
    header and run exactly, far fewer than plain descent's on the same data; the model file
    records the rule and says its state is not saved."""
    from conftest import DIABETES, lstsq_solution, run_json

    _, _, optimum = lstsq_solution(DIABETES)
    plain = run_json("fit", DIABETES, "-o", "gd.json")
    for name in ("momentum", "nesterov"):
        doc = run_json("fit", DIABETES, "--optimizer", name, "-o", f"{name}.json")
        assert doc["verdict"] == "converged"
        assert doc["epochs_run"] == doc["epochs_predicted"]
        assert (doc["final_loss"] - optimum) / optimum <= 1e-6
        assert doc["epochs_run"] * 5 <= plain["epochs_run"]
        import json

        saved = json.loads((in_tmp / f"{name}.json").read_text())["training"]["optimizer"]
        assert saved["name"] == name and 0 < saved["momentum"] < 1
        assert saved["state"] == "not saved"


def test_optimizer_options_that_do_not_go_together_are_one_line(in_tmp):
    from conftest import NOTES, run

    for args, words in (
        (("--momentum", "0.5"), "--momentum is the β of momentum and nesterov"),
        (("--optimizer", "momentum", "--momentum", "1"), "--momentum must be in [0, 1)"),
        (("--beta1", "0.5"), "Adam's"),
        (("--optimizer", "adam", "--adam-eps", "0"), "--adam-eps must be above 0"),
        (("--optimizer", "sgd2"), "'sgd2' is not one of"),
    ):
        result = run("fit", NOTES, *args)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
        assert words in result.stderr
    for command in ("sweep-lr", "compare"):  # the same checks, naming the rule asked for
        result = run(command, NOTES, "--optimizer", "adam", "--momentum", "0.5")
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "--momentum is the β of momentum and nesterov, not of adam" in result.stderr


def test_adam_trains_a_network_and_the_affine_model_as_rough_runs(in_tmp):
    from conftest import NOTES, run_json

    doc = run_json("fit", NOTES, "--optimizer", "adam", "--epochs", "300", "--lr", "0.05")
    assert doc["final_loss"] < 0.5 * doc["history"][0]["train_loss"]
    net = run_json("fit", NOTES, "--hidden", "8", "--optimizer", "adam", "--epochs", "50")
    assert net["verdict"] in ("converged", "still falling", "plateau")


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_sweep_lr_sets_momentum_theory_beside_measurement(in_tmp, name):
    """sweep-lr --optimizer momentum: one β for the grid, theory's rate beside it, and for every
    stable rate the epochs predicted equal the epochs measured; rates past the bound fail."""
    from conftest import DIABETES, run_json

    doc = run_json(
        "sweep-lr", DIABETES, "--optimizer", name, "--momentum", "0.8", "--lrs", "0.05,0.1,5",
        "--epochs", "2000",
    )  # fmt: skip
    rows = {round(r["lr"], 6): r for r in doc["rows"]}
    measured = [r for r in rows.values() if r["epochs_to_optimum"] is not None]
    assert len(measured) >= 2
    for r in measured:
        assert r["epochs_to_optimum"] == r["predicted_epochs"], r
    assert rows[5.0]["verdict"] in ("diverged", "unstable")
    assert doc["suggested_lr"] is not None and doc["suggested_lr"] < 5.0


def test_compare_puts_the_rules_side_by_side(in_tmp):
    """compare --optimizer ... alone: one constant full-batch run per rule at fit's rate for it;
    momentum and Nesterov reach the optimum where plain descent, in the same epochs, has not."""
    from conftest import DIABETES, run_json

    doc = run_json("compare", DIABETES, *[a for o in OPTIMIZERS for a in ("--optimizer", o)])
    runs = {row["label"]: row for row in doc["rows"] if row["kind"] == "run"}
    assert len(runs) == 4
    by_rule = {
        next((o for o in ("momentum", "nesterov", "adam") if o in label), "gd"): row
        for label, row in runs.items()
    }
    assert set(by_rule) == set(OPTIMIZERS)
    for rule in ("momentum", "nesterov"):
        assert by_rule[rule]["verdict"] == "converged"
    assert by_rule["gd"]["verdict"] == "still falling"  # 1,400 epochs needed, 1,000 run


def test_a_momentum_rate_past_its_bound_is_said_to_diverge_with_its_own_bound(in_tmp):
    """Past 2(1+β)/λmax: the header says it diverges, the run fails (exit 3, no model), and the
    advice names momentum's bound, not plain descent's."""
    from conftest import DIABETES, run

    result = run("fit", DIABETES, "--optimizer", "momentum", "--lr", "0.6")
    assert result.exit_code == 3 and not (in_tmp / "model.json").exists()
    assert "the loss diverges" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "momentum with β = 0.9 is stable on this data below 0.4721" in last


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
@pytest.mark.parametrize(("batch", "intercept"), [(1, True), (7, False), (32, True)])
def test_batch_maps_with_momentum_are_the_plain_rule(name, batch, intercept):
    """Minibatch epochs as products of maps of [θ; v; I] against the rule as written batch after
    batch, the same shuffled order, two rates at once, over three epochs (the velocity carried
    from epoch to epoch): the same iterates and losses to 1e-11; a run restarted (stopped) keeps
    still."""
    spec = SPECS[name]
    model = AffineModel(4, 2, intercept)
    data = _data(3)
    start = model.init_params(np.random.default_rng(0))
    stacked = {k: np.stack([v, v]) for k, v in start.items()}
    lr = np.array([0.005, 0.02])

    def rates(t0, count):
        return np.tile(lr, (count, 1))

    fast = BatchMapDescent(data, batch, intercept, np.random.default_rng(4), model.evaluator(data),
                           spec)  # fmt: skip
    plain = MinibatchDescent(model, data, batch, np.random.default_rng(4), spec)
    fast.restart(stacked)
    plain.restart(stacked)
    a = list(fast.epochs(1, 3, rates))
    b = list(plain.epochs(1, 3, rates))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.losses, y.losses, rtol=1e-11)
        for key in x.params[0]:
            np.testing.assert_allclose(x.params[0][key], y.params[0][key], rtol=1e-10, atol=1e-12)
    stopped = np.array([True, False])
    params = a[-1].params[0]
    fast.restart(params, changed=stopped)
    after = list(fast.epochs(4, 4, lambda t0, c: np.tile(lr * ~stopped, (c, 1))))
    np.testing.assert_array_equal(after[-1].params[0]["W"][0], params["W"][0])
