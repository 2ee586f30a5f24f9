"""--lr auto and epochs until converged: what babynn chooses when the user does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import DIABETES, NOTES, run

from babynn_cli.core.schedules import Constant


def conditioned(path, kappa: float, rows: int = 400, seed: int = 0):
    """Two features whose standardised Hessian H = (2/N) X̃ᵀX̃ has condition number exactly κ:
    correlation ρ = (κ − 1)/(κ + 1) makes the eigenvalues 2(1 ± ρ) (and 2 for the intercept)."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(rows, 2))
    Z -= Z.mean(axis=0)
    Q, _ = np.linalg.qr(Z)  # orthonormal, centred columns
    rho = (kappa - 1) / (kappa + 1)
    a = Q[:, 0] * np.sqrt(rows)
    b = (rho * Q[:, 0] + np.sqrt(1 - rho**2) * Q[:, 1]) * np.sqrt(rows)
    y = 3 + a + 2 * b + rng.normal(size=rows)
    pd.DataFrame({"a": a * 5 + 10, "b": b * 0.1 - 2, "y": y}).to_csv(path, index=False)
    return path


def fit_json(*args):
    result = run("fit", *args, "--json")
    import json

    return result.exit_code, json.loads(result.stdout) if result.stdout else None, result.stderr


@pytest.mark.parametrize("kappa", [10.0, 1e3, 1e5])
def test_no_options_reach_the_optimum_and_say_what_theory_predicted(in_tmp, kappa):
    path = conditioned(in_tmp / "k.csv", kappa)
    result = run("fit", path, "-o", "m.json")
    assert result.exit_code == 0, result.stderr
    _, doc, _ = fit_json(path, "-o", "m.json")
    assert doc["verdict"] == "converged" and doc["relative_gap"] <= 1e-6
    assert doc["stop_reason"] == "gap_tol" and doc["until_converged"] is True
    assert doc["lr_rule"] == "theory"
    assert doc["fastest_lr_full_batch"] == pytest.approx(0.5, rel=1e-9)  # 2/(2(1+ρ) + 2(1−ρ))
    predicted = doc["epochs_predicted"]
    assert predicted is not None and abs(doc["epochs_run"] - predicted) <= 1  # theory is exact
    assert f"theory predicts {predicted:,} at this rate" in result.stderr
    assert (
        "η* = 2/(λmax+λmin) rounded down: the constant rate with the best worst-case contraction"
        in result.stderr
    )


def test_the_auto_rate_is_the_fastest_constant_rate_of_the_condition_number(in_tmp):
    """κ = 10³: H's eigenvalues are 2(1 ± ρ) and 2, so η* = 2/(λmax + λmin) = 1/2 exactly."""
    path = conditioned(in_tmp / "k.csv", 1e3)
    _, doc, _ = fit_json(path, "-o", "m.json")
    assert doc["lr"] == 0.5 and doc["schedule"] == "constant: η(t) = 0.5"


def test_explicit_rate_and_epochs_train_exactly_as_before(in_tmp):
    """--lr and --epochs given: today's iterates bit for bit, against the training loop called
    with the former defaults (--tol 1e-10, no goal)."""
    from babynn_cli.core.fitted import fit as fit_problem
    from babynn_cli.core.problem import initial_params, make_problem
    from babynn_cli.core.train import TrainSettings

    _, doc, stderr = fit_json(DIABETES, "--lr", 0.1, "--epochs", 300, "-o", "m.json")
    frame = pd.read_csv(DIABETES)
    X, Y = frame.iloc[:, :-1].to_numpy(), frame.iloc[:, -1:].to_numpy()
    problem = make_problem(X, Y)
    params = initial_params(problem, 0, "normal")
    fitted = fit_problem(problem, params, Constant(0.1), TrainSettings(300, None, 1e-10), 0)
    losses = [h["train_loss"] for h in doc["history"]]
    assert losses == fitted.history.train_loss[:, 0].tolist()
    assert doc["weights"] == fitted.W.tolist() and doc["lr_rule"] == "given"
    assert doc["until_converged"] is False
    assert (
        "best worst-case contraction per epoch (its slowest" not in stderr
        and "epochs: until" not in stderr
    )


def test_the_header_says_what_was_chosen_and_nothing_when_nothing_was(in_tmp):
    chosen = run("fit", NOTES, "-o", "a.json").stderr
    assert (
        "η = 0.4856, η* = 2/(λmax+λmin) rounded down: the constant rate with the best worst-case"
        in chosen
    )
    assert "epochs: until (L − L*)/L* ≤ 1e-06 (--gap-tol); theory predicts 6 at this rate" in chosen
    given_rate = run("fit", NOTES, "--lr", 0.001, "-o", "b.json").stderr
    assert "best worst-case contraction per epoch (its slowest" not in given_rate
    assert "theory predicts 5,458 at this rate (at most 54,580" in given_rate  # until converged
    given_both = run("fit", NOTES, "--lr", 0.001, "--epochs", 10, "-o", "c.json").stderr
    assert (
        "best worst-case contraction per epoch (its slowest" not in given_both
        and "epochs: until" not in given_both
    )


def test_minibatches_and_networks_get_a_rate_from_a_short_sweep(in_tmp):
    code, doc, _ = fit_json(DIABETES, "-b", 32, "-o", "m.json")
    assert code == 0 and doc["lr_rule"] == "sweep" and doc["until_converged"] is False
    rates = np.geomspace(doc["stable_lr_full_batch"] / 1000, doc["stable_lr_full_batch"], 7)
    assert np.min(np.abs(rates - doc["lr"]) / rates) < 1e-12  # one of the grid's
    text = run("fit", DIABETES, "-b", 32, "-o", "n.json").stderr
    assert f"η = {doc['lr']:.4g}, picked by a short sweep: 7 rates from" in text
    code, net, _ = fit_json("sample:nonlinear", "--hidden", 8, "-e", 100, "-o", "net.json")
    assert code == 0 and net["lr_rule"] == "sweep"
    assert np.min(np.abs(np.geomspace(1e-3, 1, 7) - net["lr"])) < 1e-12


def test_data_too_ill_conditioned_for_the_cap_says_so_and_names_the_pair(in_tmp, monkeypatch):
    import babynn_cli.core.auto as auto

    monkeypatch.setattr(auto, "MAX_EPOCHS", 2000)  # κ = 10⁵ needs more than this
    path = conditioned(in_tmp / "k.csv", 1e5)
    result = run("fit", path, "-o", "m.json")
    assert "this data is ill-conditioned (κ = 1e+05)" in result.stderr
    assert "dropping one of 'a' and 'b', nearly a copy of each other" in result.stderr
    assert result.exit_code == 0  # it still runs, to the cap, and says what is left
    raw = run("fit", path, "--no-standardize", "-o", "r.json")
    assert "standardising the features (drop --no-standardize)" in raw.stderr


def test_when_every_probed_rate_fails_the_run_says_so_and_exits_3(in_tmp, monkeypatch):
    """A grid whose every rate diverges (the ceiling pushed far past the bound): one line, exit 3,
    no model file."""
    from babynn_cli.core.theory import Curvature

    monkeypatch.setattr(Curvature, "stable_lr", property(lambda self: 1e6))
    result = run("fit", DIABETES, "-b", 32, "-o", "m.json")
    assert result.exit_code == 3
    assert result.stderr.startswith(
        "Error: every rate --lr auto tried (7 rates from 1e+03 to 1e+06"
    )
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (in_tmp / "m.json").exists()


def test_babynn_compiled_0_keeps_numpy(monkeypatch):
    from babynn_cli.core import compiled

    monkeypatch.setenv("BABYNN_COMPILED", "0")
    compiled.kernel.cache_clear()
    try:
        assert compiled.kernel() is None
    finally:
        compiled.kernel.cache_clear()
