"""babynn fit and predict through the command line, against np.linalg.lstsq."""

from __future__ import annotations

import csv
import gzip
import itertools
import json

import numpy as np
import pandas as pd
import pytest
from conftest import DIABETES, NOTES, TWO, lstsq_solution, run, run_json


@pytest.mark.parametrize(
    ("path", "targets", "lr"),
    [(NOTES, None, 0.3), (TWO, ["y1", "y2"], 0.3), (DIABETES, None, 0.2)],
)
def test_fit_reaches_lstsq_on_every_sample(in_tmp, path, targets, lr):
    target_args = [a for t in targets or [] for a in ("-t", t)]
    doc = run_json("fit", path, *target_args, "--lr", lr, "--epochs", 20000, "--tol", 0)
    W, b, loss = lstsq_solution(path, targets)
    assert doc["optimum_loss"] == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(doc["weights"], W, rtol=1e-9)
    np.testing.assert_allclose(doc["bias"], b, rtol=1e-9)
    assert doc["final_loss"] == pytest.approx(loss, rel=1e-12)
    assert doc["stop_reason"] == "max_epochs"


def test_default_fit_converges_and_says_why_it_stopped(in_tmp):
    result = run("fit", NOTES)
    assert result.exit_code == 0, result.stderr
    assert "Loss by epoch" in result.stdout and "Weights" in result.stdout
    assert "(L − L*)/L* fell to --gap-tol at epoch 6: converged, as asked" in result.stdout
    assert "the notes' conditions" not in result.stderr  # full batch: they do not apply
    assert "constant rates above 0.8068 (2/λmax) make the loss grow" in result.stderr
    assert (
        "0.4856 (η* = 2/(λmax+λmin)) has the best worst-case contraction per epoch" in result.stderr
    )
    minibatch = run("fit", NOTES, "-b", 16, "--epochs", 5, "-o", "mb.json").stderr
    assert "Σ η(t)² < ∞ no: the rate does not decay enough for the gradient's noise" in minibatch
    decaying = run("fit", NOTES, "-b", 16, "-e", 5, "--schedule", "inverse", "-o", "d.json").stderr
    assert "Σ η(t)² < ∞ yes: the rate decays fast enough" in decaying
    doc = json.loads((in_tmp / "model.json").read_text())
    _, _, loss = lstsq_solution(NOTES)
    assert loss <= doc["result"]["final_loss"] <= loss * (1 + 1e-6)  # within --gap-tol of L*


def test_json_has_the_promised_fields_and_stdout_holds_only_it(in_tmp):
    result = run("fit", NOTES, "--json", "--lr", 0.1, "--epochs", 30, "--val-frac", 0.2)
    assert result.exit_code == 0
    doc = json.loads(result.stdout)  # the whole of stdout is one JSON object
    for key in ("weights", "bias", "features", "targets", "final_loss", "epochs_run"):
        assert key in doc
    assert doc["features"] == ["x0", "x1", "x2"] and doc["targets"] == ["y"]
    assert np.array(doc["weights"]).shape == (3, 1)
    assert doc["stop_reason"] == "max_epochs" and doc["epochs_run"] == 30
    assert len(doc["history"]) == 31 and doc["history"][0]["lr"] is None
    assert doc["val_loss"] is not None and doc["n_val"] == 40
    assert result.stderr == ""


def test_history_file_has_a_row_per_epoch(in_tmp):
    result = run("fit", NOTES, "-q", "--lr", 0.1, "--epochs", 12, "--tol", 0, "--history", "h.csv")
    assert result.exit_code == 0 and result.stdout == ""
    with open(in_tmp / "h.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "updates", "lr", "train_loss", "val_loss"]
    assert [int(r["epoch"]) for r in rows] == list(range(13))
    assert float(rows[5]["lr"]) == 0.1
    losses = [float(r["train_loss"]) for r in rows]
    assert all(a > b for a, b in itertools.pairwise(losses))
    first = (in_tmp / "h.csv").read_bytes()  # no wall times: an identical run, identical bytes
    again = run("fit", NOTES, "-q", "--lr", 0.1, "--epochs", 12, "--tol", 0, "--history", "h.csv")
    assert again.exit_code == 0 and (in_tmp / "h.csv").read_bytes() == first


def test_model_file_records_everything(in_tmp):
    run("fit", TWO, "-t", "y1", "-t", "y2", "-q", "--schedule", "step", "-o", "m.json", "-b", 50,
        "--lr", 0.1)  # fmt: skip
    doc = json.loads((in_tmp / "m.json").read_text())
    assert doc["format"] == "babynn-model" and doc["format_version"] == 3
    assert doc["model"]["features"] == ["a", "b", "c", "d"]
    assert doc["model"]["targets"] == ["y1", "y2"]
    frame = pd.read_csv(TWO)
    X, Y = frame[list("abcd")].to_numpy(), frame[["y1", "y2"]].to_numpy()
    std = doc["standardization"]  # the training rows' own statistics (ddof 0)
    np.testing.assert_allclose(std["mean"], X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std["scale"], X.std(axis=0), rtol=1e-12)
    W, b = np.array(doc["model"]["weights"]), np.array(doc["model"]["bias"])
    result = doc["result"]  # the loss it records is the loss of the weights it holds
    assert result["final_loss"] == pytest.approx(((Y - X @ W - b) ** 2).sum(axis=1).mean(), 1e-12)
    assert doc["training"]["schedule"]["formula"] == "step: η(t) = 0.1·0.5^⌊t/100⌋"
    assert doc["training"]["batch_size"] == 50 and doc["training"]["seed"] == 0
    assert result["interrupted"] is False and result["weights_epoch"] == result["epochs_run"]
    assert not list(in_tmp.glob(".*tmp"))  # no temporary file left behind


def test_two_identical_commands_write_identical_models(in_tmp):
    for name in ("a.json", "b.json"):
        run("fit", DIABETES, "-q", "-b", 32, "--epochs", 20, "-o", name)
    assert (in_tmp / "a.json").read_bytes() == (in_tmp / "b.json").read_bytes()


def test_predict_reproduces_the_loss_fit_reported(in_tmp):
    doc = run_json("fit", DIABETES, "--lr", 0.2, "--epochs", 300)
    result = run("predict", "model.json", DIABETES)
    assert result.exit_code == 0, result.stderr
    predictions = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert list(predictions.columns) == ["progression"]
    y = pd.read_csv(DIABETES)["progression"].to_numpy()
    mse = np.mean((y - predictions["progression"].to_numpy()) ** 2)
    assert mse == pytest.approx(doc["final_loss"], rel=1e-14)  # the CSV keeps every digit
    assert "MSE" in result.stderr and "R²" in result.stderr
    assert (
        json.loads(run("predict", "model.json", DIABETES, "--json").stdout)["mse"]
        == (doc["final_loss"])
    )


def test_predict_json_to_a_file_and_extra_columns_ignored(in_tmp):
    run("fit", NOTES, "-q")
    frame = pd.read_csv(NOTES).drop(columns=["y"])
    frame.insert(0, "id", range(len(frame)))
    frame[["x2", "id", "x0", "x1"]].to_csv("new.csv", index=False)
    result = run("predict", "model.json", "new.csv", "-o", "out.csv")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""
    out = pd.read_csv("out.csv")
    model = json.loads((in_tmp / "model.json").read_text())["model"]
    expected = frame[["x0", "x1", "x2"]].to_numpy() @ np.array(model["weights"]) + model["bias"]
    np.testing.assert_allclose(out["y"].to_numpy(), expected[:, 0], rtol=1e-12)
    doc = json.loads(run("predict", "model.json", NOTES, "--json").stdout)
    assert len(doc["predictions"]) == 200 and "mse" in doc and len(doc["r2"]) == 1


def test_warm_start_continues_a_run(in_tmp):
    run("fit", DIABETES, "-q", "--epochs", 50, "--tol", 0, "-o", "first.json")
    cont = run_json("fit", DIABETES, "--warm-start", "first.json", "--epochs", 50, "--tol", 0)
    straight = run_json("fit", DIABETES, "--epochs", 100, "--tol", 0)
    first = json.loads((in_tmp / "first.json").read_text())["result"]["final_loss"]
    assert cont["history"][0]["train_loss"] == pytest.approx(first, rel=1e-9)
    assert cont["final_loss"] == pytest.approx(straight["final_loss"], rel=1e-9)


def test_warm_start_with_other_columns_is_an_error(in_tmp):
    run("fit", NOTES, "-q", "-o", "notes.json")
    result = run("fit", DIABETES, "--warm-start", "notes.json")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --warm-start model has features x0, x1, x2 → y")


def test_divergence_exits_3_and_leaves_the_existing_model_alone(in_tmp):
    run("fit", DIABETES, "-q")
    before = (in_tmp / "model.json").read_bytes()
    result = run("fit", DIABETES, "--lr", 5, "--history", "h.csv")
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(
        "Error: diverged at epoch 2 with learning rate 5: the loss grew to "
    )
    assert "stable below 0.2485 (2/λmax)" in lines[-1] and "no model file written" in lines[-1]
    assert "Loss by epoch" in result.stdout  # a failed run still reports ...
    assert "none: no model file written" in result.stdout
    rows = (in_tmp / "h.csv").read_text().splitlines()
    assert len(rows) == 1 + 3  # ... and writes its history: a header, epochs 0-2
    assert (in_tmp / "model.json").read_bytes() == before


def test_stdin_gzip_and_other_separators(in_tmp):
    text = NOTES.read_text()
    from_stdin = run("fit", "-", "--json", "--epochs", 5, input=text)
    assert from_stdin.exit_code == 0, from_stdin.stderr
    with gzip.open(in_tmp / "notes.csv.gz", "wt") as f:
        f.write(text)
    (in_tmp / "notes.tsv").write_text(text.replace(",", "\t"))
    from_gz = run_json("fit", "notes.csv.gz", "--epochs", 5)
    from_tsv = run_json("fit", "notes.tsv", "--sep", "\t", "--epochs", 5)
    plain = run_json("fit", NOTES, "--epochs", 5)
    assert json.loads(from_stdin.stdout)["weights"] == plain["weights"]
    assert from_gz["weights"] == plain["weights"] == from_tsv["weights"]


def test_features_option_picks_columns(in_tmp):
    """The model trains on the named columns only: it reaches their least-squares fit."""
    doc = run_json("fit", NOTES, "--features", "x0,x2", "--lr", 0.4, "--tol", 0, "-e", 2000)
    frame = pd.read_csv(NOTES)
    design = np.column_stack([frame[["x0", "x2"]].to_numpy(), np.ones(len(frame))])
    solution = np.linalg.lstsq(design, frame[["y"]].to_numpy(), rcond=None)[0]
    assert doc["features"] == ["x0", "x2"]
    np.testing.assert_allclose(doc["weights"], solution[:-1], rtol=1e-10)
    np.testing.assert_allclose(doc["bias"], solution[-1], rtol=1e-10)


def test_early_stopping_keeps_the_best_validation_epoch(in_tmp):
    doc = run_json(
        "fit", DIABETES, "--val-frac", 0.3, "--early-stopping", "--tol", 1e-3, "--lr", 0.2
    )
    assert doc["stop_reason"] == "early_stopping"
    vals = [h["val_loss"] for h in doc["history"]]
    assert doc["best_epoch"] == int(np.argmin(vals))


def test_quiet_prints_nothing_but_errors(in_tmp):
    result = run("fit", NOTES, "-q")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""


def test_no_intercept_and_no_standardize(in_tmp):
    args = ("--no-intercept", "--no-standardize", "--lr", 0.01, "--tol", 0, "--epochs", 1000)
    doc = run_json("fit", NOTES, *args)
    W, _, _ = lstsq_solution(NOTES, intercept=False)
    assert doc["bias"] == [0.0]
    np.testing.assert_allclose(doc["weights"], W, rtol=1e-6)


SCHEDULE_FORMULAS = {  # η(t) as the README's table writes it, with --lr 0.3 and the defaults
    "constant": lambda t: 0.3 + 0 * t,
    "inverse": lambda t: 0.3 / (1 + 0.01 * t),
    "power": lambda t: 0.3 / (1 + 0.01 * t) ** 0.75,
    "exponential": lambda t: 0.3 * 0.99**t,
    "step": lambda t: 0.3 * 0.5 ** np.floor(t / 100),
    "cosine": lambda t: 0.3 * (1 + np.cos(np.pi * t / 250)) / 2,  # T: 250 updates, η_min 0
}


@pytest.mark.parametrize("schedule", sorted(SCHEDULE_FORMULAS))
def test_every_schedule_runs_at_the_rates_its_formula_gives(in_tmp, schedule):
    """At full batch, epoch e makes update t = e - 1: its rate is the formula's η(e - 1)."""
    result = run("fit", NOTES, "--schedule", schedule, "--lr", 0.3, "-e", 250, "--tol", 0, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    history = doc["history"][1:]
    t = np.array([row["epoch"] for row in history]) - 1.0
    lrs = np.array([row["lr"] for row in history])
    np.testing.assert_allclose(lrs, SCHEDULE_FORMULAS[schedule](t), rtol=1e-12, atol=1e-15)
    assert doc["schedule"].startswith(f"{schedule}: η(t) = ")


def test_a_command_alone_says_what_the_whole_app_says(in_tmp):
    """main() builds only the command named (the others' options cost every start 10 ms); its
    help, its usage errors and its runs are the whole app's, byte for byte."""
    from typer.testing import CliRunner

    from babynn_cli.cli import app, for_arguments

    assert for_arguments(["-h"]) is app
    assert for_arguments(["fitt", "x.csv"]) is app  # no command's name: Click's own answer
    for args in (["--version"], ["--version", "--bogus"]):  # answered before any command
        none = for_arguments(args)
        assert not none.registered_commands
        alone, whole = CliRunner().invoke(none, args), CliRunner().invoke(app, args)
        assert (alone.exit_code, alone.stdout, alone.stderr) == (
            whole.exit_code, whole.stdout, whole.stderr,
        )  # fmt: skip
    fit_run = ["fit", str(NOTES), "-q", "--lr", "0.1", "--json"]
    cases = [["fit", "-h"], ["sweep-lr", "-h"], ["predict", "-h"], ["fit"], fit_run]
    for args in [*cases, ["fit", str(NOTES), "--bogus"]]:
        one = for_arguments(args)
        assert len(one.registered_commands) == 1
        alone, whole = CliRunner().invoke(one, args), CliRunner().invoke(app, args)
        assert (alone.exit_code, alone.stderr) == (whole.exit_code, whole.stderr)
        if args is fit_run:  # the same run: the same document but for the epochs' wall times
            docs = [json.loads(r.stdout) for r in (alone, whole)]
            for doc in docs:
                doc["history"] = [{**h, "seconds": None} for h in doc["history"]]
            assert docs[0] == docs[1]
        else:
            assert alone.stdout == whole.stdout
