"""Every number true, every output a Makefile can trust: figures from one stated epoch, advice
that works when followed, words that match babynn's own numbers, --json-file only on success."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import DIABETES, NOTES, lstsq_solution, run, run_json


def test_a_diverged_run_gives_every_figure_at_one_stated_epoch(in_tmp):
    result = run("fit", NOTES, "--lr", "1.0", "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    epoch = doc["final_epoch"]
    assert epoch == doc["epochs_run"] - 1  # the weights before the diverged epoch
    at = {h["epoch"]: h["train_loss"] for h in doc["history"]}
    assert doc["final_loss"] == pytest.approx(at[epoch], rel=1e-12)
    L = doc["optimum_loss"]
    assert doc["relative_gap"] == pytest.approx((doc["final_loss"] - L) / L, rel=1e-12)
    text = run("fit", NOTES, "--lr", "1.0").stdout
    assert f"training loss (epoch {epoch}, before it diverged)" in text
    assert f"R² (epoch {epoch}, before it diverged)" in text
    sweep = run("sweep-lr", NOTES, "--lrs", "0.1,1.0", "-o", "s.csv")
    assert sweep.exit_code in (0, 3)
    row = pd.read_csv("s.csv").set_index("lr").loc[1.0]
    assert row["final_epoch"] == epoch and row["stopped_epoch"] == doc["epochs_run"]
    assert row["final_loss"] == pytest.approx(doc["final_loss"], rel=1e-12)


def test_a_rate_past_the_bound_is_said_to_diverge_before_training(in_tmp):
    stderr = run("fit", NOTES, "--lr", "0.9", "-o", "m.json").stderr  # 2/λmax = 0.8068
    assert "above 2/λmax = 0.8068" in stderr and "diverges" in stderr
    assert "theory predicts more than" not in stderr


def test_a_rate_too_slow_to_finish_runs_a_look_and_its_advice_is_exact(in_tmp, monkeypatch):
    """Past the most epochs babynn runs unasked, a given rate runs 1,000 and says how many it
    needs; followed, that number converges at exactly that epoch and not one before."""
    from babynn_cli.core import auto

    monkeypatch.setattr(auto, "MAX_EPOCHS", 2000)  # what babynn would run unasked
    result = run("fit", NOTES, "--lr", "0.002", "-o", "m.json")
    assert result.exit_code == 0
    needs = int(
        re.search(r"theory predicts ([\d,]+) at this rate", result.stderr)[1].replace(",", "")
    )
    assert needs > 2000
    assert f"--epochs {needs}" in result.stderr
    doc = run_json("fit", NOTES, "--lr", "0.002", "-o", "m.json")
    assert doc["epochs_run"] == 1000 and doc["verdict"] == "still falling"
    advised = int(re.search(r"\(--epochs (\d+)", doc["next_step"])[1])
    assert advised == needs
    done = run_json("fit", NOTES, "--lr", "0.002", "--epochs", advised, "--gap-tol", "1e-6")
    assert done["verdict"] == "converged" and done["epochs_run"] == needs
    short = run_json("fit", NOTES, "--lr", "0.002", "--epochs", advised - 1, "-o", "s.json")
    assert short["verdict"] == "still falling"


@pytest.mark.parametrize("lr", ["0.1778", "0.05", "0.2"])
def test_a_restart_at_eta_star_is_offered_only_when_it_is_faster(in_tmp, lr):
    doc = run_json("fit", DIABETES, "--lr", lr, "--epochs", "200")
    step = doc["next_step"]
    more = int(re.search(r"about (\d+) more epochs", step)[1])
    offered = re.search(r"--lr [\d.]+ gets there in (\d+)", step)
    if offered:
        assert int(offered[1]) < more
    fit = run("fit", DIABETES, "-o", "m.json").stderr
    assert "best worst-case contraction per epoch" in fit and "is the fastest" not in fit


def test_json_file_is_written_only_when_the_command_succeeds(in_tmp):
    (in_tmp / "sweep.json").write_text("old")
    failed = run("sweep-lr", NOTES, "--lrs", "5,10", "-b", "8", "--json-file", "sweep.json")
    assert failed.exit_code == 3 and (in_tmp / "sweep.json").read_text() == "old"
    ok = run("sweep-lr", NOTES, "--lrs", "0.1,0.3", "--json-file", "sweep.json", "--json")
    assert ok.exit_code == 0
    assert json.loads((in_tmp / "sweep.json").read_text()) == json.loads(ok.stdout)
    for command in (("fit", NOTES), ("compare", NOTES), ("predict", "model.json", NOTES)):
        if command[0] == "predict":
            assert run("fit", NOTES, "-q").exit_code == 0
        got = run(*command, "--json-file", "doc.json")
        assert got.exit_code == 0, got.stderr
        assert json.loads((in_tmp / "doc.json").read_text())
        (in_tmp / "doc.json").unlink()
    refused = run("fit", NOTES, "--json-file", NOTES)
    assert refused.exit_code == 2 and "does not write over its own inputs" in refused.stderr


def test_side_files_are_byte_identical_and_write_whole_numbers_as_such(in_tmp):
    for name in ("a.csv", "b.csv"):
        assert run("sweep-lr", NOTES, "--num", "4", "--epochs", "200", "-o", name).exit_code == 0
    a = (in_tmp / "a.csv").read_bytes()
    assert a == (in_tmp / "b.csv").read_bytes()
    frame = pd.read_csv(in_tmp / "a.csv", dtype=str, keep_default_na=False)
    for column in ("reached_epoch", "epochs_to_optimum", "predicted_epochs", "stopped_epoch"):
        cells = [c for c in frame[column] if c]
        assert cells and all(re.fullmatch(r"\d+", c) for c in cells), (column, cells)
    np.testing.assert_array_equal(
        frame["final_epoch"].astype(int),
        frame["stopped_epoch"].astype(int) - (frame["verdict"] == "diverged"),
    )


def test_usage_errors_are_in_babynns_words(in_tmp):
    for args, words in (
        (("compare", NOTES, "--lr", "fast"), "--lr takes a number above 0 or 'auto'"),
        (("fit", NOTES, "--epochs", "1.5"), "not a whole number"),
        (("fit", NOTES, "--epochs", "0"), "must be ≥ 1 (got 0)"),
        (("fit", NOTES, "--val-frac", "2"), "must be from 0.0 to 1.0 (got 2.0)"),
        (("fit", NOTES, "--val-frac", "nan"), "nan is not a finite number"),
        (("sweep-lr", NOTES, "--max", "inf"), "inf is not a finite number"),
        (("fit", NOTES, "--lr-min", "x"), "'x' is not a number"),
        (("fit", NOTES, "--schedule", "nope"), "'nope' is not one of"),
        (("fit", NOTES, "--gamma", "1.5"), "--gamma must be in (0, 1)"),
        (("fit", NOTES, "-o", "-"), "writes this output to a file"),
        (("fit", NOTES, "--plot", "p.svg"), "--plot writes a PNG picture"),
    ):
        result = run(*args)
        assert result.exit_code == 2, (args, result.stderr)
        line = result.stderr.strip()
        assert line.startswith("Error: ") and "\n" not in line and words in line, line
        assert "Input should be" not in line and "Value error" not in line
    gamma = [line for line in run("fit", "-h").stdout.splitlines() if "--gamma" in line]
    assert gamma and "x>=0.0" not in gamma[0]
    auto = run_json("compare", NOTES, "--lr", "auto", "--lr", "0.1", "-b", "full")
    rates = sorted(row["lr"] for row in auto["rows"] if row["kind"] == "run")
    assert rates == [0.1, 0.4856]  # auto: fit's own rate, η* rounded down


def test_outputs_never_name_a_part_of_a_folder_or_glob_and_notes_are_not_parts(in_tmp):
    frame = pd.read_csv(NOTES)
    (in_tmp / "parts").mkdir()
    frame[:100].to_csv(in_tmp / "parts" / "a.csv", index=False)
    frame[100:].to_csv(in_tmp / "parts" / "b.csv", index=False)
    before = (in_tmp / "parts" / "a.csv").read_bytes()
    for data, flag in (("parts", "-o"), ("parts/*.csv", "--history"), ("parts", "--json-file")):
        result = run("fit", data, flag, "parts/a.csv")
        assert result.exit_code == 2 and "part 'parts/a.csv'" in result.stderr
    assert (in_tmp / "parts" / "a.csv").read_bytes() == before
    (in_tmp / "parts" / "notes.txt").write_text("not data\n")
    (in_tmp / "parts" / "._a.csv").write_bytes(b"\x00\x05\x16\x07")  # macOS's resource file
    whole = run_json("fit", NOTES, "-o", "w.json")
    parts = run_json("fit", "parts", "-o", "p.json")
    assert parts["n_train"] == 200 and parts["final_loss"] == pytest.approx(whole["final_loss"])


def test_names_given_on_the_command_line_are_stripped_as_the_headers_are(in_tmp):
    doc = run_json("fit", NOTES, "-t", " y ", "--exclude", " x2")
    assert doc["targets"] == ["y"] and doc["features"] == ["x0", "x1"]


def test_a_converged_line_that_explains_little_says_so(in_tmp):
    result = run("fit", "sample:nonlinear", "--json")
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "converged" and doc["r2"][0] < 0.1
    last = run("fit", "sample:nonlinear", "-o", "b.json").stderr.strip().splitlines()[-1]
    assert last.startswith("converged") and "--hidden" in last
    assert f"{100 * doc['r2'][0]:.1f} % of the targets' variance" in last
    good = run("fit", NOTES, "-o", "c.json").stderr.strip().splitlines()[-1]
    assert "poor line" not in good  # R² 0.995


def test_a_minibatch_sweep_draws_what_it_measured(in_tmp):
    """No rate of a minibatch sweep comes within --gap-tol of L* (they settle at a noise floor):
    the chart shows each rate's final loss instead of an empty epochs chart."""
    out = run("sweep-lr", DIABETES, "--batch-size", "32", "--epochs", "30", "--num", "5").stdout
    assert "final training loss by rate" in out and "●" in out
    full = run("sweep-lr", NOTES, "--epochs", "200", "--num", "4").stdout
    assert "epochs to come within --gap-tol of L*" in full


def test_what_was_an_internal_error_is_one_line(in_tmp):
    import subprocess
    import sys
    from pathlib import Path

    huge = run("fit", NOTES, "--history-every", "9223372036854775808")
    assert huge.exit_code == 2 and "--history-every" in huge.stderr
    assert "internal error" not in huge.stderr
    babynn = Path(sys.executable).parent / "babynn"
    closed = subprocess.run(
        [str(babynn), "fit", "-", "-q"], stdin=None, capture_output=True, text=True,
        preexec_fn=lambda: __import__("os").close(0), cwd=in_tmp,
    )  # fmt: skip
    assert closed.returncode == 1
    assert closed.stderr.startswith("Error: standard input is closed")


def test_a_network_cannot_start_from_zeros(in_tmp):
    """At zero every hidden unit of a layer gets the same gradient and stays equal to the others
    (here: all of them equal after training, as the refusal says)."""
    from babynn_cli.core.fitted import fit
    from babynn_cli.core.problem import initial_params, make_problem
    from babynn_cli.core.schedules import make_schedule
    from babynn_cli.core.train import TrainSettings

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    Y = np.sin(X[:, :1]) + X[:, 1:] ** 2
    net = make_problem(X, Y, hidden=(4,), activation="sigmoid")
    start = initial_params(net, 0, "zeros")
    done = fit(net, start, make_schedule("constant", 0.1), TrainSettings(50, None, tol=0), 0)
    W1 = done.params["W1"]
    assert np.allclose(W1, W1[:, :1]) and np.allclose(done.params["W2"], done.params["W2"][0])
    refused = run("fit", NOTES, "--hidden", "4", "--init", "zeros")
    assert refused.exit_code == 2 and "--init zeros is for the affine model" in refused.stderr


def test_a_run_at_exactly_the_bound_is_a_plateau_and_says_why(in_tmp):
    """At η = 2/λmax the error along λmax's eigenvector flips sign and keeps its size: the gap
    stays at that component's share of the initial error (computed here with numpy's eigh)."""
    first = run_json("fit", NOTES, "--epochs", "1", "-o", "a.json")
    bound = first["stable_lr_full_batch"]
    result = run("fit", NOTES, "--lr", repr(bound), "--json", "-o", "b.json")
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "plateau" and doc["epochs_run"] == 1000
    assert "--lr 0.4856 (η*)" in doc["next_step"] and "never shrinks" in doc["next_step"]
    header = run("fit", NOTES, "--lr", repr(bound), "-o", "c.json").stderr
    assert "at exactly 2/λmax" in header and "diverges" not in header
    from babynn_cli.core.problem import initial_params, make_problem

    frame = pd.read_csv(NOTES)
    X, y = frame[["x0", "x1", "x2"]].to_numpy(), frame["y"].to_numpy()
    start = initial_params(make_problem(X, y[:, None]), 0)  # babynn's draw, seed 0
    Z = np.column_stack([(X - X.mean(0)) / X.std(0), np.ones(len(X))])
    theta = np.r_[start["W"][:, 0], start["w0"]]
    for _ in range(1000):  # the notes' rule, written out: θ ← θ − η(2/N)Zᵀ(Zθ − y)
        theta -= bound * 2 / len(Z) * Z.T @ (Z @ theta - y)
    assert doc["final_loss"] == pytest.approx(np.mean((Z @ theta - y) ** 2), rel=1e-9)
    lam, V = np.linalg.eigh(2 / len(Z) * Z.T @ Z)  # the gap left: λmax's share, for ever
    error = np.r_[start["W"][:, 0], start["w0"]] - np.linalg.lstsq(Z, y, rcond=None)[0]
    share = 0.5 * lam[-1] * (V[:, -1] @ error) ** 2
    assert doc["final_loss"] - doc["optimum_loss"] == pytest.approx(share, rel=1e-6)


def test_a_name_that_is_a_file_and_a_pattern_is_not_guessed(in_tmp):
    import shutil

    shutil.copy(NOTES, in_tmp / "d[1].csv")
    assert run("fit", "d[1].csv", "-q").exit_code == 0  # the file alone: it is read
    shutil.copy(NOTES, in_tmp / "d1.csv")
    both = run("fit", "d[1].csv", "-q")
    assert both.exit_code == 1 and "names a file and, as a pattern" in both.stderr


def test_a_rounded_total_column_converges_as_predicted(in_tmp):
    """c = round(a + b, 6): a direction of the weights so flat that theory counts it as none.
    Training starts with the reference's part along it (as the header says), so the run reaches
    np.linalg.lstsq's L* in the epochs theory predicts, never "diverged" or "ill-conditioned"."""
    from conftest import lstsq_solution

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=500), rng.normal(size=500)
    c = np.round(a + b, 6)
    y = 2 * a - b + 0.5 * c + rng.normal(scale=0.1, size=500)
    pd.DataFrame({"a": a, "b": b, "c": c, "y": y}).to_csv("total.csv", index=False)
    result = run("fit", "total.csv", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "converged" and doc["epochs_run"] == doc["epochs_predicted"]
    _, _, L = lstsq_solution(in_tmp / "total.csv")
    assert doc["optimum_loss"] == pytest.approx(L, rel=1e-9)
    assert doc["final_loss"] == pytest.approx(L, rel=2e-6)
    assert "ill-conditioned" not in run("fit", "total.csv", "-o", "b.json").stderr


@pytest.mark.parametrize("scale", [1e-170, 1e-200, 1e160, 1e250])
def test_features_of_any_finite_size_train_and_a_target_past_squares_is_one_line(in_tmp, scale):
    """Features whose squares leave double precision are kept in power-of-two units of their
    own (exact): the run is the unscaled run, its weights divided by the scale, in memory and
    streamed, and predict scores them alike. A target that size is refused: its loss is its
    square."""
    plain = run_json("fit", NOTES, "-o", "plain.json")
    frame = pd.read_csv(NOTES)
    frame[["x0", "x1", "x2"]] *= scale
    frame.to_csv("scaled.csv", index=False)
    for extra in ((), ("--stream",)):
        doc = run_json("fit", "scaled.csv", *extra, "-o", "scaled.json")
        assert doc["verdict"] == "converged" and doc["epochs_run"] == plain["epochs_run"]
        assert doc["optimum_loss"] == pytest.approx(plain["optimum_loss"], rel=1e-12)
        assert doc["final_loss"] == pytest.approx(plain["final_loss"], rel=1e-9)
        np.testing.assert_allclose(
            np.ravel(doc["weights"]) * scale, np.ravel(plain["weights"]), rtol=1e-9
        )
    W, _, _ = lstsq_solution(NOTES)
    np.testing.assert_allclose(np.ravel(doc["optimum_weights"]) * scale, W.ravel(), rtol=1e-9)
    scores = run_json("predict", "scaled.json", "scaled.csv", "-o", "p.csv")
    assert scores["mse"] == pytest.approx(doc["final_loss"], rel=1e-9)
    frame["y"] *= scale
    frame.to_csv("target.csv", index=False)
    result = run("fit", "target.csv")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: ") and "target" in result.stderr
    assert ("underflow" if scale < 1 else "overflow") in result.stderr


def test_a_port_that_never_answers_is_not_waited_on_for_ever(in_tmp, monkeypatch):
    """Dask's client waits without end at a port that accepts and never answers (a web server):
    babynn gives up after CONNECT_SECONDS (here 1) in one line; schemes it does not speak are
    refused."""
    pytest.importorskip("distributed")
    import socket
    import threading

    from babynn_cli import cluster

    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 1)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
    pd.read_csv(NOTES).to_csv("notes.csv", index=False)
    silent = run("fit", "notes.csv", "--scheduler", f"tcp://127.0.0.1:{port}")
    assert silent.exit_code == 1 and "did not answer within 1 s" in silent.stderr
    server.close()
    for address in ("ws://127.0.0.1:8786", "tls://127.0.0.1:8786", "ucx://127.0.0.1:8786"):
        refused = run("fit", "notes.csv", "--scheduler", address)
        assert refused.exit_code == 2 and "is not supported" in refused.stderr
        assert refused.stderr.startswith(f"Error: --scheduler '{address}' is not a scheduler's")


@pytest.mark.parametrize("sample", ["penguins", "iris"])
def test_a_streamed_predict_writes_the_in_memory_bytes(in_tmp, monkeypatch, sample):
    """predict writes its CSV block by block (memory follows the block): with blocks of 7 rows
    the file and the score on stderr are those of one block holding every row, and --json (which
    holds every prediction) gives the same predictions and score."""
    from conftest import SAMPLES

    import babynn_cli.data.read as read

    options = {
        "penguins": ["-t", "Body Mass (g)", "--id", "Individual ID", "--id", "Sample Number",
                     "--exclude", "Comments", "--impute", "--dropna"],
        "iris": ["--l2", "0.01"],
    }  # fmt: skip
    frame = pd.read_csv(SAMPLES / f"{sample}.csv")
    frame.iloc[: len(frame) // 2].to_csv("train.csv", index=False)
    new = frame.iloc[len(frame) // 2 :].copy()
    if sample == "penguins":
        new.loc[new.index[3], "Island"] = "Atlantis"  # a category never seen
        new.loc[new.index[5], "Culmen Length (mm)"] = np.nan  # imputed
    new.to_csv("new.csv", index=False)
    fitted = run("fit", "train.csv", *options[sample], "-q")
    assert fitted.exit_code == 0, fitted.stderr
    whole = run("predict", "model.json", "new.csv", "-o", "whole.csv")
    monkeypatch.setattr(read, "PREDICT_BLOCK_ROWS", 7)
    blocks = run("predict", "model.json", "new.csv", "-o", "blocks.csv")
    stdout = run("predict", "model.json", "new.csv")
    assert whole.exit_code == blocks.exit_code == stdout.exit_code == 0, blocks.stderr
    assert (in_tmp / "blocks.csv").read_bytes() == (in_tmp / "whole.csv").read_bytes()
    assert stdout.stdout.encode() == (in_tmp / "whole.csv").read_bytes()
    assert blocks.stderr == whole.stderr
    doc = run_json("predict", "model.json", "new.csv")
    key = "probabilities" if sample == "iris" else "predictions"
    expected = np.asarray([[np.nan if v is None else v for v in row] for row in doc[key]])
    got = pd.read_csv(in_tmp / "blocks.csv").iloc[:, -expected.shape[1] :].to_numpy(float)
    np.testing.assert_array_equal(got, expected)
    if sample == "iris":
        assert f"accuracy {100 * doc['accuracy']:.1f} %" in blocks.stderr
    else:
        mse = float(re.search(r"MSE ([\d.e+-]+)", blocks.stderr)[1])
        assert mse == pytest.approx(doc["mse"], rel=1e-7)


def test_a_bad_row_deep_in_a_streamed_predict_costs_no_file(in_tmp, monkeypatch):
    import babynn_cli.data.read as read

    assert run("fit", NOTES, "-q").exit_code == 0
    frame = pd.read_csv(NOTES).astype({"x1": object})
    frame.loc[150, "x1"] = "oops"
    frame.to_csv("bad.csv", index=False)
    (in_tmp / "out.csv").write_text("old\n")
    monkeypatch.setattr(read, "PREDICT_BLOCK_ROWS", 7)  # the bad row is in the 22nd block
    result = run("predict", "model.json", "bad.csv", "-o", "out.csv")
    assert result.exit_code == 1 and "row 151" in result.stderr
    assert (in_tmp / "out.csv").read_text() == "old\n"
    assert sorted(p.name for p in in_tmp.iterdir()) == ["bad.csv", "model.json", "out.csv"]


def test_a_single_float_feature_predicts(in_tmp):
    """One float feature: pandas hands out a read-only view of the column, where predict marks
    missing cells; it was "cannot read …: assignment destination is read-only"."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=60) * 100.5
    pd.DataFrame({"income": x, "food": 0.4 * x + 3 + rng.normal(size=60)}).to_csv(
        "one.csv", index=False
    )
    for extra in ((), ("--hidden", "4", "--epochs", "20")):
        assert run("fit", "one.csv", "-q", *extra).exit_code == 0
        scores = run_json("predict", "model.json", "one.csv", "-o", "p.csv")
        assert np.isfinite(scores["mse"])
        assert len(pd.read_csv("p.csv")) == 60
