"""Honest verdicts: what happened in a run, one vocabulary in fit, sweep-lr and compare, and exit
codes a Makefile can trust. The references: np.linalg.lstsq's optimum, the runs' own loss curves,
and theory's exact predictions checked by running them."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import DIABETES, NOTES, SAMPLES, lstsq_solution, run, run_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from babynn_cli.core.stopping import RunEnd, StopReason
from babynn_cli.core.verdict import UNSTABLE_FACTOR, Verdict, judge

NONLINEAR = SAMPLES / "nonlinear.csv"


def fit_json(*args):
    """fit --json: the exit code and the whole document (printed whatever the verdict)."""
    result = run("fit", *args, "--json")
    return result.exit_code, json.loads(result.stdout), result.stderr


# -- the verdict read from constructed curves ----------------------------------------------------
def end(reason=StopReason.MAX_EPOCHS, epochs=None, curve=()):
    return RunEnd(reason, len(curve) - 1 if epochs is None else epochs)


@pytest.mark.parametrize(
    ("curve", "reason", "optimum", "expected"),
    [
        ([5.0, 2.0, 1.0000001], StopReason.TOL, 1.0, Verdict.CONVERGED),
        ([5.0, 2.0, 1.5], StopReason.MAX_EPOCHS, 1.0, Verdict.STILL_FALLING),
        ([5.0, 1.2, 1.1, 1.3], StopReason.TOL, 1.0, Verdict.PLATEAU),
        ([5.0, 0.1, 4.0], StopReason.MAX_EPOCHS, 0.05, Verdict.UNSTABLE),
        ([5.0, 0.1, 6.0], StopReason.MAX_EPOCHS, 0.05, Verdict.DIVERGED),  # above its start
        ([5.0, 4.0, np.inf], StopReason.DIVERGED, 1.0, Verdict.DIVERGED),
        # a network: no optimum; settled when its plateau rule (--tol, early stopping) stops it,
        # wherever its last epoch lies in the noise
        ([5.0, 2.0, 2.0], StopReason.TOL, None, Verdict.CONVERGED),
        ([5.0, 2.0, 2.5], StopReason.TOL, None, Verdict.CONVERGED),
        ([5.0, 2.0, 2.5], StopReason.EARLY_STOPPING, None, Verdict.CONVERGED),
        ([5.0, 2.0, 2.0], StopReason.MAX_EPOCHS, None, Verdict.STILL_FALLING),
        ([5.0, 2.0, 2.5], StopReason.MAX_EPOCHS, None, Verdict.PLATEAU),
    ],
)
def test_each_verdict_on_a_constructed_curve(curve, reason, optimum, expected):
    j = judge(np.array(curve), end(reason, curve=curve), optimum, gap_tol=1e-6)
    assert j.verdict is expected
    assert j.initial_loss == curve[0] and j.final_epoch == len(curve) - 1


def test_unstable_means_an_order_of_magnitude_above_the_best():
    below = [10.0, 0.1, 0.1 * UNSTABLE_FACTOR]
    above = [10.0, 0.1, 0.1 * UNSTABLE_FACTOR * 1.01]
    assert judge(np.array(below), end(curve=below), None, 1e-6).verdict is Verdict.PLATEAU
    assert judge(np.array(above), end(curve=above), None, 1e-6).verdict is Verdict.UNSTABLE


# -- the five runs, on the sample data ---------------------------------------------
@pytest.mark.parametrize("lr", [0.2, 0.25])
def test_minibatch_blow_up_on_diabetes_is_diverged_exit_3_and_writes_no_model(in_tmp, lr):
    """Before: the loss went 29075 → 4089 → 10374 → 87860, 'converged', exit 0, model written."""
    (in_tmp / "blown.json").write_text("old")
    code, doc, stderr = fit_json(DIABETES, "--batch-size", 8, "--lr", lr, "-o", "blown.json")
    losses = [h["train_loss"] for h in doc["history"]]
    assert code == 3 and doc["verdict"] == "diverged" and doc["stop_reason"] == "diverged"
    assert losses[-1] > losses[0] and losses[-1] > 10 * min(losses)  # what the rule read
    assert doc["model_file"] is None and doc["weights_epoch"] is None
    assert (in_tmp / "blown.json").read_text() == "old"
    line = stderr.strip().splitlines()[-1]
    assert line.startswith(f"Error: diverged at epoch {len(losses) - 1} with learning rate {lr}: ")
    assert f"the loss rose to {losses[-1]:.6g} at epoch {len(losses) - 1}" in line  # the blow-up


def test_a_network_that_blows_up_is_diverged_in_fit_and_in_sweep_lr(in_tmp):
    args = ("--hidden", 16, "--epochs", 100)
    code, doc, _ = fit_json(NONLINEAR, *args, "--lr", 0.4642)
    losses = [h["train_loss"] for h in doc["history"]]
    assert code == 3 and doc["verdict"] == "diverged" and max(losses) > 10 * losses[0]
    result = run("sweep-lr", NONLINEAR, *args, "--lrs", "0.01,0.4642", "--json")
    rows = {r["lr"]: r for r in json.loads(result.stdout)["rows"]}
    assert rows[0.4642]["verdict"] == "diverged"
    assert rows[0.01]["verdict"] != "diverged"


def test_a_small_rate_is_still_falling_and_theory_says_exactly_how_far_it_has_to_go(in_tmp):
    """The notes' η = 0.001 on their example: 5.5× L* after 1000 epochs; the next step's numbers
    come from theory and are checked by running them."""
    code, doc, stderr = fit_json(NOTES, "--lr", 0.001, "--epochs", 1000)
    _, _, optimum = lstsq_solution(NOTES)
    assert code == 0 and doc["verdict"] == "still falling"
    assert doc["relative_gap"] == pytest.approx((doc["final_loss"] - optimum) / optimum, rel=1e-9)
    step = doc["next_step"]
    more = int(step.split("about ")[1].split(" more epochs")[0])
    best_lr = float(step.split("or --lr ")[1].split(" gets there")[0])
    best_epochs = int(step.split("gets there in ")[1])
    total = 1000 + more
    assert f"(--epochs {total})" in step
    there = run_json("fit", NOTES, "--lr", 0.001, "--epochs", total, "--tol", 0)
    short = run_json("fit", NOTES, "--lr", 0.001, "--epochs", total - 1, "--tol", 0)
    assert there["verdict"] == "converged" and short["verdict"] == "still falling"
    fast = run_json("fit", NOTES, "--lr", best_lr, "--epochs", best_epochs, "--tol", 0)
    assert fast["verdict"] == "converged"
    assert stderr == ""  # --json: nothing on stderr for a run that did not fail
    assert run("compare", NOTES, "--lr", 0.001, "--json").exit_code == 0
    compared = run_json("compare", NOTES, "--lr", 0.001)
    assert compared["rows"][0]["verdict"] == "still falling"


def test_sgd_at_a_constant_rate_is_a_plateau_in_every_command(in_tmp):
    """Batch 1 at η = 0.01 on the notes' example wanders above the optimum: never 'converged'."""
    args = ("--batch-size", 1, "--lr", 0.01)
    code, doc, _ = fit_json(NOTES, *args)
    assert code == 0 and doc["verdict"] == "plateau"
    assert doc["final_loss"] > doc["best_loss"] > doc["optimum_loss"]
    assert "decaying schedule" in doc["next_step"]
    compared = run_json("compare", NOTES, *args)
    assert compared["rows"][0]["verdict"] == "plateau"
    swept = run_json("sweep-lr", NOTES, "--batch-size", 1, "--lrs", "0.01,0.02")
    assert next(r for r in swept["rows"] if r["lr"] == 0.01)["verdict"] == "plateau"


def test_a_rate_just_past_the_bound_diverges_with_the_rise_quoted(in_tmp):
    code, doc, stderr = fit_json(NOTES, "--lr", 0.85)
    losses = [h["train_loss"] for h in doc["history"]]
    assert code == 3 and doc["verdict"] == "diverged"
    assert all(b > a for a, b in zip(losses[-6:-1], losses[-5:], strict=True))  # 5 rises
    line = stderr.strip().splitlines()[-1]
    assert f"the loss rose in each of 5 epochs in a row, to {losses[-1]:.6g}" in line
    assert "stable below 0.8068 (2/λmax), e.g. --lr 0.48" in line


def test_a_failed_run_still_reports_everything(in_tmp):
    """Loss table, verdict, history file and the whole JSON object; no model file."""
    result = run("fit", NOTES, "--lr", 10, "--history", "h.csv")
    assert result.exit_code == 3
    assert "Loss by epoch" in result.stdout and "diverged" in result.stdout
    assert (in_tmp / "h.csv").exists() and not (in_tmp / "model.json").exists()
    code, doc, _ = fit_json(NOTES, "--lr", 10)
    assert code == 3 and doc["model_file"] is None and doc["verdict"] == "diverged"
    assert len(doc["history"]) == doc["epochs_run"] + 1 and "weights" in doc


def test_compare_with_models_alone_trains_nothing(in_tmp):
    run("fit", NOTES, "-q", "-o", "m.json")
    doc = run_json("compare", NOTES, "--model", "m.json")
    assert [r["kind"] for r in doc["rows"]] == ["saved model"]
    assert doc["rows"][0]["verdict"] is None
    result = run("compare", NOTES, "--model", "m.json", "--plot", "p.png")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --plot draws the runs' curves; with --model alone nothing is trained\n"
    )


def test_compare_json_is_identical_but_for_times_and_its_csv_byte_identical(in_tmp):
    args = ("compare", DIABETES, "-b", "full", "-b", 16, "--epochs", 60, "--json", "-o")
    docs = []
    for name in ("a.csv", "b.csv"):
        result = run(*args, name)
        doc = json.loads(result.stdout)
        for row in doc["rows"]:
            row.pop("seconds")
        docs.append(doc)
    assert docs[0] == docs[1]
    a, b = ((in_tmp / n).read_bytes() for n in ("a.csv", "b.csv"))
    assert a == b and b"seconds" not in a  # side files: byte-identical, no wall times


# -- exit codes ---------------------------------------------------------------------------------
def test_require_converged_is_a_gate_for_makefiles(in_tmp):
    (in_tmp / "m.json").write_text("old")
    args = ("--lr", 0.001, "--epochs", 1000, "-o", "m.json", "--require-converged")
    code, doc, stderr = fit_json(NOTES, *args)
    assert code == 4 and doc["verdict"] == "still falling" and doc["model_file"] is None
    assert (in_tmp / "m.json").read_text() == "old"
    assert stderr.startswith("Error: still falling: ") and "--require-converged" in stderr
    code, doc, _ = fit_json(NOTES, "-o", "m.json", "--require-converged")
    assert code == 0 and doc["verdict"] == "converged" and doc["model_file"] == "m.json"
    assert json.loads((in_tmp / "m.json").read_text())["result"]["verdict"] == "converged"


@pytest.mark.parametrize(
    "args",
    [
        ("--lr", 0.05, "--batch-size", 16, "--schedule", "inverse"),  # noisy but fine
        ("--lr", 0.02, "--batch-size", 1, "--epochs", 30),
        ("--lr", 0.3),
    ],
)
def test_noisy_but_sensible_runs_end_well(in_tmp, args):
    code, doc, _ = fit_json(NOTES, *args)
    assert code == 0 and doc["verdict"] not in ("diverged", "unstable")
    assert doc["final_loss"] < doc["history"][0]["train_loss"]


def test_a_sensible_network_with_minibatches_ends_well(in_tmp):
    code, doc, _ = fit_json(
        NONLINEAR, "--hidden", 32, "--lr", 0.05, "--batch-size", 16, "--epochs", 60, "--tol", 0
    )
    assert code == 0 and doc["verdict"] in ("still falling", "plateau")
    assert doc["final_loss"] < doc["optimum_loss"] / 5  # far past the best affine fit


# -- the properties -----------------------------------------------------------------------
EXAMPLES = int(os.environ.get("BABYNN_EXAMPLES", "40"))  # more in a long local run


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # files are named per example
)
@given(
    seed=st.integers(0, 2**31),
    rows=st.integers(6, 40),
    features=st.integers(1, 4),
    log_lr=st.floats(-3, 1),
    batch=st.sampled_from([None, 1, 3, 8]),
    epochs=st.integers(1, 40),
)
def test_above_its_start_exits_3_and_converged_is_within_gap_tol(
    tmp_path, seed, rows, features, log_lr, batch, epochs
):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)) * rng.uniform(0.1, 10, size=features)
    y = X @ rng.normal(size=features) + rng.normal() + rng.uniform(0.01, 1) * rng.normal(size=rows)
    path = tmp_path / f"d{seed}.csv"
    names = ",".join([*(f"x{j}" for j in range(features)), "y"])
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header=names, comments="")
    args = [path, "--lr", 10**log_lr, "--epochs", epochs, "-o", tmp_path / "m.json"]
    if batch is not None:
        args += ["--batch-size", batch]
    code, doc, _ = fit_json(*args)
    initial, final = doc["history"][0]["train_loss"], doc["history"][-1]["train_loss"]
    if not final <= initial:  # nan or above its start
        assert code == 3 and doc["verdict"] != "converged"
    if doc["verdict"] == "converged":
        _, _, optimum = lstsq_solution(path)
        assert (doc["final_loss"] - optimum) / optimum <= 1e-6 * (1 + 1e-6)
    assert code == (3 if doc["verdict"] in ("diverged", "unstable") else 0)


@pytest.mark.parametrize(
    "args",
    [
        ("--lr", 0.001),
        ("--lr", 0.3, "--batch-size", 4),
        ("--lr", 0.01, "--batch-size", 1),
        ("--lr", 0.9),
        ("--lr", 0.05, "--schedule", "inverse", "--batch-size", 16),
    ],
)
def test_the_same_configuration_gets_the_same_verdict_in_every_command(in_tmp, args):
    flags = dict(zip(args[::2], args[1::2], strict=True))
    lr = flags.pop("--lr")
    rest = [str(x) for kv in flags.items() for x in kv]
    _, fitted, _ = fit_json(NOTES, "--lr", lr, *rest, "--epochs", 200)
    swept = json.loads(
        run("sweep-lr", NOTES, "--lrs", f"{lr},{lr * 2}", *rest, "--epochs", 200, "--json").stdout
    )
    compared = json.loads(
        run("compare", NOTES, "--lr", lr, *rest, "--epochs", 200, "--json").stdout
    )
    row = next(r for r in swept["rows"] if r["lr"] == lr)
    assert fitted["verdict"] == row["verdict"] == compared["rows"][0]["verdict"]


def test_a_loss_that_becomes_nan_is_quoted_as_such(in_tmp):
    code, doc, stderr = fit_json(NONLINEAR, "--hidden", 64, "-b", 1, "--lr", 0.1, "-e", 3)
    assert code == 3 and doc["verdict"] == "diverged"
    assert len(doc["history"]) == doc["epochs_run"] + 1  # the diverged epoch is in the history
    assert doc["history"][-1]["train_loss"] is None  # NaN, written as null
    assert "the loss overflowed to NaN (not a number) at epoch 1" in stderr
