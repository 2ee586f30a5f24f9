"""Networks and stochastic descent with no options: the rate, the batch size, the rules that stop
a run whose loss rises and falls, and the verdict they lead to."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DIABETES, NOTES, run, run_json
from hypothesis import given, settings
from hypothesis import strategies as st

from babynn_cli.core.descent import Epochs
from babynn_cli.core.rows import Rows
from babynn_cli.core.schedules import make_schedule
from babynn_cli.core.stopping import StopReason
from babynn_cli.core.train import TrainSettings, train

NONLINEAR = "sample:nonlinear"


@pytest.mark.parametrize("hidden", [("16",), ("32", "16")])
@pytest.mark.parametrize("seed", range(5))
def test_the_nonlinear_sample_trains_with_no_options(in_tmp, hidden, seed):
    """`babynn fit sample:nonlinear --hidden 16` (and two layers), nothing else: minibatch
    descent at a probed rate, stopped on the validation loss, fits sin(x0) + x1² (R² ≥ 0.95)."""
    layers = [arg for units in hidden for arg in ("--hidden", units)]
    result = run("fit", NONLINEAR, *layers, "--seed", seed, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["r2"][0] >= 0.95
    assert doc["lr_rule"] == "sweep" and doc["n_val"] == 100  # babynn's split: 10 %
    assert (in_tmp / "model.json").exists()


@pytest.mark.parametrize(
    ("data", "args", "rules"),
    [
        # a network: the probe stops each rate on the validation loss, as the run does
        (NONLINEAR, ("--hidden", "16"), ("--val-frac", "0.1", "--early-stopping", "--tol", "5e-4")),
        (
            DIABETES,
            ("--hidden", "8", "--activation", "relu"),
            ("--val-frac", "0.1", "--early-stopping", "--tol", "5e-4"),
        ),
        # the affine model by minibatches: the goal L* and the plateau rule on the training loss
        (NOTES, ("--batch-size", "8"), ("--tol", "5e-4", "--gap-tol", "1e-6")),
    ],
)
def test_fit_picks_the_rate_sweep_lr_suggests_on_the_same_grid(in_tmp, data, args, rules):
    """One rule picks a rate everywhere: fit's short sweep is sweep-lr on fit's grid, for fit's
    probe epochs, under the rules the run itself uses (given explicitly to sweep-lr)."""
    fitted = run_json("fit", data, *args)
    probe = fitted["lr_probe"]
    assert fitted["lr_rule"] == "sweep" and probe is not None
    grid = ",".join(repr(r) for r in probe["rates"])
    swept = run_json("sweep-lr", data, *args, "--lrs", grid, "--epochs", probe["epochs"], *rules)
    assert swept["suggested_lr"] == fitted["lr"]


def test_a_network_trains_by_minibatches_unless_asked_for_full_batch(in_tmp):
    doc = run_json("fit", NONLINEAR, "--hidden", "4", "--epochs", "3", "--lr", "0.01")
    assert doc["history"][-1]["updates"] == 3 * 32  # 1,000 rows in batches of 32
    doc = run_json("fit", NONLINEAR, "--hidden", "4", "--epochs", "3", "--lr", "0.01", "-b", "full")
    assert doc["history"][-1]["updates"] == 3


def test_explicit_epochs_run_every_epoch_unless_a_rule_is_asked_for(in_tmp):
    """As PyTorch, Keras and max_iter users expect: --epochs N runs N (a network, minibatches),
    and --tol brings a rule back."""
    for args in (("--hidden", "4", "--lr", "0.01"), ("-b", "16", "--lr", "0.01")):
        doc = run_json("fit", NOTES, *args, "--epochs", "150")
        assert doc["epochs_run"] == 150 and doc["stop_reason"] == "max_epochs", args
        doc = run_json("fit", NOTES, *args, "--epochs", "150", "--tol", "0.5")
        assert doc["epochs_run"] < 150 and doc["stop_reason"] == "tol", args


def test_the_robbins_monro_run_runs_its_epochs_and_is_judged_truly(in_tmp):
    """The notes' lesson: batch 1 with a decaying rate runs the 200 epochs it was asked for
    (it stopped at epoch 10 before) and gets within --gap-tol of L*."""
    args = ("--batch-size", "1", "--schedule", "inverse", "--lr", "0.1", "--epochs", "200")
    doc = run_json("fit", NOTES, *args)
    assert doc["epochs_run"] == 200 and doc["stop_reason"] == "max_epochs"
    assert doc["verdict"] == "converged" and doc["relative_gap"] <= 1e-6


@pytest.mark.parametrize(
    ("args", "says", "never"),
    [
        # a constant rate at batch 1 settles at its noise floor: a decaying schedule lowers it
        (("--lr", "0.01"), "a decaying schedule (e.g. --schedule inverse)", "still decays"),
        # a rate that already decays (slowly): more epochs, never "a decaying schedule"
        (
            ("--schedule", "inverse", "--decay", "1e-6", "--lr", "0.05"),
            "still decays",
            "--schedule",
        ),
    ],
)
def test_a_plateau_is_told_only_what_applies_to_it(in_tmp, args, says, never):
    doc = run_json("fit", NOTES, "--batch-size", "1", *args)
    assert doc["verdict"] == "plateau"
    assert says in doc["next_step"] and never not in doc["next_step"]


def test_a_full_batch_plateau_is_not_blamed_on_stochastic_noise():
    from babynn_cli.core.problem import make_problem
    from babynn_cli.report.advice import _plateau_step

    rng = np.random.default_rng(0)
    problem = make_problem(rng.normal(size=(50, 2)), rng.normal(size=(50, 1)), hidden=(3,))
    full = _plateau_step(problem, None, 0.5, True, 100)
    assert "stochastic" not in full and "full-batch descent at η = 0.5" in full
    minibatch = _plateau_step(problem, 8, 0.5, True, 100)
    assert "noise of stochastic descent" in minibatch


# -- the plateau rule, on constructed curves -------------------------------------------------------
class _Curve:
    """A model whose 'descent' yields a given loss curve, epoch by epoch (the rules read only
    the losses): the training loop's stopping rules on any curve."""

    intercept = True
    loss, l2 = "mse", 0.0

    def __init__(self, losses: np.ndarray) -> None:
        self.curve = losses

    def descent(self, data, batch_size, rng, epochs=None, runs=1, optimizer=None):
        curve = self.curve

        class Replay:
            updates_per_epoch = 1
            exact = False

            def restart(self, params, changed=None):
                self.params = params
                return curve[:1].copy()

            def epochs(self, first, last, rates):
                for epoch in range(first, last + 1):
                    yield Epochs.one(
                        self.params, curve[epoch : epoch + 1].copy(), rates(epoch - 1, 1)[0]
                    )

        return Replay()

    def evaluator(self, data):
        return lambda stack: np.zeros(1)


def _reference_stop(curve: np.ndarray, tol: float, patience: int, share: float) -> int | None:
    """The plateau rule as its docstring says it, one epoch at a time: the first epoch t whose
    last `max(patience, ⌈share·t⌉)` epochs made no new best by more than tol (of a spread of 1)."""
    best, stale = curve[0], 0
    for t in range(1, len(curve)):
        if best - curve[t] > tol:
            best, stale = curve[t], 0
        else:
            stale += 1
            best = min(best, curve[t])
        if stale >= max(patience, int(np.ceil(share * t))):
            return t
    return None


@settings(max_examples=40, deadline=None)
@given(
    start=st.floats(1.0, 100.0),
    rate=st.floats(0.0, 0.05),
    noise=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**31),
)
def test_a_falling_noisy_curve_stops_as_its_rule_says_and_never_before_the_patience(
    start, rate, noise, seed
):
    """Noisy curves L_t = start·e^(−rate·t)·(1 + noise·u_t) + 1: the loop stops each where the
    plateau rule, read one epoch at a time, first fires — never before its patience of 20 epochs,
    and never while a new best (by more than tol of the spread) comes within every window."""
    rng = np.random.default_rng(seed)
    t = np.arange(301)
    curve = start * np.exp(-rate * t) * (1 + noise * rng.uniform(size=len(t))) + 1.0
    curve[0] = start * (1 + noise) + 1.0  # the start is the highest: nothing diverges
    Y = np.array([[-1.0], [1.0]])  # the spread (the loss of predicting the mean) is 1
    rows = Rows(np.zeros((2, 1)), Y, np.zeros(1), np.ones(1))
    tol, patience, share = 5e-4, 20, 0.25
    rules = TrainSettings(300, 1, tol, patience, patience_share=share, tol_of_spread=True)
    result = train(_Curve(curve), {"W": np.zeros((1, 1))}, rows, [make_schedule("constant", 0.1)],
                   rules, np.random.default_rng(0))  # fmt: skip
    expected = _reference_stop(curve, tol, patience, share)
    run_end = result.runs[0]
    if expected is None:
        assert run_end.stop_reason is StopReason.MAX_EPOCHS and run_end.epochs_run == 300
    else:
        assert run_end.stop_reason is StopReason.TOL and run_end.epochs_run == expected
        assert expected >= patience


def test_an_explicit_full_batch_run_stops_at_machine_precision_with_the_former_weights(in_tmp):
    """At full batch on the affine model, --lr and --epochs still stop once the loss no longer
    changes to machine precision (the --tol rule at 1e-10): the former weights, to 1e-12."""
    import pandas as pd

    from babynn_cli.core.fitted import fit as fit_problem
    from babynn_cli.core.problem import initial_params, make_problem
    from babynn_cli.core.schedules import Constant

    now = run_json("fit", NOTES, "--lr", 0.4, "--epochs", 200)
    frame = pd.read_csv(NOTES)
    problem = make_problem(frame.iloc[:, :-1].to_numpy(), frame.iloc[:, -1:].to_numpy())
    params = initial_params(problem, 0)
    former = fit_problem(problem, params, Constant(0.4), TrainSettings(200, None, 1e-10), 0)
    assert now["epochs_run"] == former.end.epochs_run < 200 and now["stop_reason"] == "tol"
    np.testing.assert_allclose(now["weights"], former.W, rtol=1e-12)
    np.testing.assert_allclose(now["bias"], former.bias, rtol=1e-12)
