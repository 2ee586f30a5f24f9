"""Networks learn standardised targets: the same --lr means the same on any target scale, and
every loss, weight and prediction still comes out in the target's own units."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLES, run, run_json

NONLINEAR = SAMPLES / "nonlinear.csv"
NETWORK = ("--hidden", "8", "--lr", "0.05", "-e", "150", "--tol", "0")


def scaled_copy(path, factor, shift=0.0):
    frame = pd.read_csv(NONLINEAR)
    frame["y"] = frame["y"] * factor + shift
    frame.to_csv(path, index=False)
    return path


def test_the_same_network_on_a_target_times_1000_trains_alike(in_tmp):
    plain = run_json("fit", NONLINEAR, *NETWORK, "-o", "a.json")
    big = run_json("fit", scaled_copy(in_tmp / "big.csv", 1000.0, 5e4), *NETWORK, "-o", "b.json")
    np.testing.assert_allclose(big["r2"], plain["r2"], rtol=1e-9)
    assert big["final_loss"] == pytest.approx(plain["final_loss"] * 1e6, rel=1e-9)
    losses = np.array([[h["train_loss"] for h in d["history"]] for d in (plain, big)])
    np.testing.assert_allclose(losses[1], losses[0] * 1e6, rtol=1e-9)  # the targets' units
    assert big["verdict"] == plain["verdict"]
    # the model file predicts in the target's own units
    a = run_json("predict", "a.json", NONLINEAR)
    b = run_json("predict", "b.json", in_tmp / "big.csv")
    np.testing.assert_allclose(
        np.array(b["predictions"]), np.array(a["predictions"]) * 1000 + 5e4, rtol=1e-9
    )
    assert b["mse"] == big["final_loss"]  # predict reproduces fit's loss exactly


def test_the_model_file_records_the_target_scaling_and_older_files_still_load(in_tmp):
    run("fit", NONLINEAR, *NETWORK, "-q", "-o", "m.json")
    doc = json.loads((in_tmp / "m.json").read_text())
    scaling = doc["model"]["target_scaling"]
    y = pd.read_csv(NONLINEAR)["y"].to_numpy()
    assert scaling["mean"] == pytest.approx([y.mean()]) and scaling["in_last_layer"] is True
    assert scaling["scale"] == pytest.approx(y.std())
    before = run_json("predict", "m.json", NONLINEAR)
    del doc["model"]["target_scaling"]  # as a file written before it was recorded
    (in_tmp / "old.json").write_text(json.dumps(doc))
    assert run_json("predict", "old.json", NONLINEAR)["predictions"] == before["predictions"]


def test_warm_starting_a_network_continues_where_it_stopped(in_tmp):
    """The saved last layer gives y; the restarted network learns ỹ: the first epoch of the
    continued run starts from the saved model's loss."""
    first = run_json("fit", NONLINEAR, *NETWORK, "-o", "m.json")
    more = run_json("fit", NONLINEAR, *NETWORK, "--warm-start", "m.json", "-o", "n.json")
    assert more["history"][0]["train_loss"] == pytest.approx(first["final_loss"], rel=1e-10)


def test_sweeps_suggest_the_same_rate_on_any_target_scale(in_tmp):
    args = ("--hidden", "8", "--epochs", "60", "--num", "7", "--min", "0.001", "--max", "1")
    plain = run_json("sweep-lr", NONLINEAR, *args)
    big = run_json("sweep-lr", scaled_copy(in_tmp / "big.csv", 1000.0), *args)
    assert big["suggested_lr"] == plain["suggested_lr"]
