"""Networks through every command: fit, predict, compare, sweep-lr, the model file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import NOTES, ROOT, SAMPLES, lstsq_solution, run, run_json

NONLINEAR = SAMPLES / "nonlinear.csv"
README_COMPARE = (
    "--hidden 32 --lr 0.05 --batch-size 16 --epochs 200 --tol 0"  # docs/compare.md's example
)


def test_fit_and_predict_a_network(in_tmp):
    doc = run_json(
        "fit", NONLINEAR, "--hidden", 8, "--hidden", 4, "--activation", "relu", "-b", 32,
        "--lr", 0.05, "--epochs", 30, "--tol", 0,
    )  # fmt: skip
    assert doc["kind"] == "mlp" and doc["hidden"] == [8, 4] and doc["activation"] == "relu"
    shapes = [np.array(layer["weights"]).shape for layer in doc["layers"]]
    assert shapes == [(2, 8), (8, 4), (4, 1)]
    saved = json.loads((in_tmp / "model.json").read_text())
    assert saved["model"]["kind"] == "mlp" and saved["format_version"] == 3
    predicted = run_json("predict", "model.json", NONLINEAR)
    assert predicted["mse"] == doc["final_loss"]  # predict reproduces fit's loss exactly


def test_the_documented_compare_shows_a_network_far_past_the_best_affine_fit(in_tmp):
    readme = (ROOT / "docs" / "compare.md").read_text()
    assert f"babynn compare sample:nonlinear {README_COMPARE}" in readme
    doc = run_json("compare", NONLINEAR, *README_COMPARE.split())
    _, _, optimum = lstsq_solution(NONLINEAR)
    assert doc["reference"]["final_loss"] == pytest.approx(optimum, rel=1e-12)
    network = doc["rows"][0]
    assert network["model"] == "network" and network["weights"] is None
    assert network["final_loss"] < optimum / 50


def test_saved_networks_and_affine_models_as_compare_rows(in_tmp):
    run("fit", NONLINEAR, "-q", "-o", "affine.json")
    run("fit", NONLINEAR, "-q", "--hidden", 16, "-b", 16, "--lr", 0.05, "--tol", 0,
        "--epochs", 40, "-o", "net.json")  # fmt: skip
    doc = run_json("compare", NONLINEAR, "--model", "affine.json", "--model", "net.json",
                   "--epochs", 20)  # fmt: skip
    rows = {r["label"]: r for r in doc["rows"]}
    assert rows["model net.json"]["final_loss"] < rows["model affine.json"]["final_loss"] / 10
    assert rows["model net.json"]["weight_distance"] is None
    assert rows["model affine.json"]["weight_distance"] is not None


def test_sweep_with_a_network_says_the_theory_is_the_affine_models(in_tmp):
    doc = run_json("sweep-lr", NONLINEAR, "--hidden", 8, "--num", 5, "--epochs", 30, "-b", 32)
    assert doc["theory_applies"] is False
    assert not any(r["from_theory"] for r in doc["rows"])
    assert doc["suggested_lr"] is not None
    result = run("sweep-lr", NONLINEAR, "--hidden", 8, "--num", 4, "--epochs", 5)
    assert "Theory for the affine model only" in result.stdout


def test_warm_start_a_network(in_tmp):
    args = ("--hidden", 8, "-b", 32, "--lr", 0.05, "--tol", 0)
    first = run_json("fit", NONLINEAR, *args, "--epochs", 10, "-o", "a.json")
    more = run_json(
        "fit", NONLINEAR, *args, "--epochs", 5, "--warm-start", "a.json", "-o", "b.json"
    )
    assert more["history"][0]["train_loss"] == pytest.approx(first["final_loss"], rel=1e-12)
    result = run("fit", NONLINEAR, "--hidden", 4, "--warm-start", "a.json")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --warm-start model is a network (--hidden 8 --activation tanh); give the same "
        "--hidden and --activation\n"
    )


def test_network_usage_errors(in_tmp):
    result = run("fit", NOTES, "--hidden", 4, "--no-intercept")
    assert result.exit_code == 2
    assert (
        result.stderr
        == "Error: --no-intercept is for the affine model; a network keeps its biases\n"
    )
    assert run("fit", NOTES, "--hidden", 0).exit_code == 2
    assert run("fit", NOTES, "--hidden", 4, "--activation", "softmax").exit_code == 2


def test_a_diverging_network_says_the_bound_is_not_its_own(in_tmp):
    result = run("fit", NONLINEAR, "--hidden", 8, "--lr", 100)
    assert result.exit_code == 3
    assert result.stderr.strip().endswith(
        "try a smaller --lr, e.g. 10, or let babynn sweep-lr find one (2/λmax is the affine "
        "model's bound, not a network's); no model file written"
    )


def test_format_1_affine_files_still_load(in_tmp):
    run("fit", NOTES, "-q", "-o", "new.json")
    doc = json.loads((in_tmp / "new.json").read_text())
    doc["format_version"] = 1  # what babynn wrote before networks: the same affine fields
    (in_tmp / "old.json").write_text(json.dumps(doc))
    old = run_json("predict", "old.json", NOTES)
    new = run_json("predict", "new.json", NOTES)
    assert old["predictions"] == new["predictions"]


def test_damaged_network_file(in_tmp):
    run("fit", NONLINEAR, "-q", "--hidden", 4, "--epochs", 2, "-o", "n.json")
    doc = json.loads((in_tmp / "n.json").read_text())
    doc["model"]["layers"][1]["weights"] = [[1.0, 2.0]]
    (in_tmp / "n.json").write_text(json.dumps(doc))
    result = run("predict", "n.json", NONLINEAR)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: model file 'n.json' is damaged: the layer 2 weights are not 4 × 1 numbers\n"
    )


def test_a_network_too_large_for_memory_is_refused_before_allocating(in_tmp):
    result = run("fit", NONLINEAR, "--hidden", 100000, "--hidden", 100000)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --hidden 100000 --hidden 100000 needs about ")
    assert "GiB of memory to train; this machine has " in result.stderr
