"""babynn sweep-lr: the experiment against the theory, and the suggestion against fit."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest
from conftest import DIABETES, NOTES, lstsq_solution, run, run_json

from babynn_cli.core.problem import initial_params, make_problem
from babynn_cli.core.schedules import ScheduleSpec
from babynn_cli.core.sweep import sweep
from babynn_cli.core.train import TrainSettings


def known_hessian_data(N=400, scales=(0.5, 1.0, 3.0), seed=0):
    """Orthogonal columns with mean-square s²: with --no-intercept and --no-standardize,
    H = (2/N) XᵀX = 2·diag(s²) exactly, so λmax = 2·max(s)²."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(N, len(scales))))
    X = Q * np.sqrt(N) * np.array(scales)
    y = X @ rng.normal(size=len(scales)) + 0.1 * rng.normal(size=N)
    return X, y[:, None]


def write_csv(path, X, Y):
    names = [f"x{j}" for j in range(X.shape[1])] + ["y"]
    np.savetxt(path, np.column_stack([X, Y]), delimiter=",", header=",".join(names), comments="")


def test_theory_matches_a_known_hessian():
    X, Y = known_hessian_data()
    problem = make_problem(X, Y, standardize=False, intercept=False)
    params = initial_params(problem, 0)
    lrs = np.geomspace(0.01, 1.0, 21)
    result = sweep(problem, params, lrs, ScheduleSpec(), TrainSettings(epochs=500, tol=0), 0)
    assert result.theory.curvature.lambda_max == pytest.approx(2 * 3.0**2, rel=1e-12)
    assert result.theory.curvature.lambda_min == pytest.approx(2 * 0.5**2, rel=1e-12)
    bound = 2 / 18
    low, high = result.edge
    step = lrs[1] / lrs[0]
    assert low < bound < high  # the edge brackets 2/λmax ...
    assert high / low <= step * 1.0001  # ... within one grid step
    # theory's predicted epochs for η* are what the η* run measured
    assert result.measured_epochs is not None
    assert abs(result.measured_epochs - result.theory.predicted_epochs) <= 1


def test_sweep_edge_on_sample_data_is_within_one_grid_step_of_the_bound(in_tmp):
    doc = run_json("sweep-lr", DIABETES, "--min", 0.01, "--max", 1, "--num", 17, "--epochs", 300)
    bound = doc["theory"]["stable_lr"]
    low, high = doc["edge"]["largest_stable"], doc["edge"]["smallest_diverged"]
    grid = [r["lr"] for r in doc["rows"] if not r["from_theory"]]
    step = grid[1] / grid[0]
    assert low < bound < high
    assert high <= bound * step and low >= bound / step
    assert doc["rows"][-1]["verdict"] == "diverged"


def test_the_suggested_rate_converges_in_fit(in_tmp):
    doc = run_json("sweep-lr", DIABETES, "--epochs", 3000)
    lr = doc["suggested_lr"]
    assert lr < doc["edge"]["smallest_diverged"]
    fitted = run_json("fit", DIABETES, "--lr", lr, "--epochs", 3000)
    _, _, optimum = lstsq_solution(DIABETES)
    assert fitted["verdict"] == "converged" and row_verdict(doc, lr) == "converged"
    assert (fitted["final_loss"] - optimum) / optimum < 1e-6
    row = next(r for r in doc["rows"] if r["lr"] == lr)
    assert row["final_loss"] == pytest.approx(fitted["final_loss"], rel=1e-10)


def row_verdict(doc, lr):
    return next(r["verdict"] for r in doc["rows"] if r["lr"] == lr)


def test_every_row_is_what_fit_gives_at_that_rate(in_tmp):
    doc = run_json("sweep-lr", NOTES, "--lrs", "0.01,0.1,0.5", "--epochs", 40, "-b", 16)
    for row in doc["rows"]:
        if row["from_theory"]:
            continue
        fitted = run_json("fit", NOTES, "--lr", row["lr"], "--epochs", 40, "-b", 16)
        assert row["final_loss"] == pytest.approx(fitted["final_loss"], rel=1e-10)
        assert row["stopped_epoch"] == fitted["epochs_run"]


def test_sweep_is_deterministic(in_tmp):
    args = ("sweep-lr", NOTES, "--num", 6, "--epochs", 50, "-b", 10)
    first, second = run(*args, "--json"), run(*args, "--json")
    assert first.exit_code == 0
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a["rows"] == b["rows"] and a["suggested_lr"] == b["suggested_lr"]


def test_most_rates_diverging_still_gives_a_sensible_suggestion(in_tmp):
    doc = run_json("sweep-lr", DIABETES, "--min", 0.05, "--max", 500, "--num", 13, "--epochs", 500)
    statuses = [r["verdict"] for r in doc["rows"]]
    assert statuses.count("diverged") > len(statuses) / 2
    assert doc["suggested_lr"] is not None
    assert doc["suggested_lr"] < doc["edge"]["smallest_diverged"]
    assert doc["suggested_lr"] < doc["theory"]["stable_lr"]


def test_every_rate_diverging_exits_3(in_tmp):
    # at full batch η* = 2/(λmax+λmin) joins the grid, and never diverges; not with minibatches
    result = run("sweep-lr", DIABETES, "--min", 5, "--max", 10, "--num", 3, "-b", 32)
    assert result.exit_code == 3
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "Error: every rate diverged or went unstable; full-batch gradient descent on this "
            "data is stable below 0.2485 (2/λmax), and --batch-size 32 needs a smaller rate still"
        )
    )


def test_minibatch_sweep_says_the_bound_is_for_full_batch(in_tmp):
    result = run("sweep-lr", NOTES, "-b", 8, "--num", 5, "--epochs", 20)
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "The bound is for full-batch gradient descent" in text
    doc = run_json("sweep-lr", NOTES, "-b", 8, "--num", 5, "--epochs", 20)
    assert not any(r["from_theory"] for r in doc["rows"])  # theory's η* is for full batch
    assert doc["full_batch"] is False


def test_table_theory_plot_and_suggestion_are_shown(in_tmp):
    result = run("sweep-lr", DIABETES, "--epochs", 200)
    assert result.exit_code == 0, result.stderr
    for part in ("Learning-rate sweep", "stability bound 2/λmax", "learning rate η0 (log)",
                 "Suggested learning rate", "diverged at epoch"):  # fmt: skip
        assert part in result.stdout
    assert "each rate of the grid" in result.stderr


def test_csv_output_has_a_row_per_rate(in_tmp):
    result = run("sweep-lr", NOTES, "--lrs", "0.01,0.1,1,10", "-q", "-o", "s.csv")
    assert result.exit_code == 0 and result.stdout == ""
    with open(in_tmp / "s.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5  # four rates and η*
    assert sum(r["suggested"] == "True" for r in rows) == 1
    assert rows[-1]["verdict"] == "diverged"


def test_png_plot(in_tmp):
    pytest.importorskip("matplotlib")
    result = run("sweep-lr", NOTES, "--num", 5, "-q", "--plot", "sweep.png")
    assert result.exit_code == 0, result.stderr
    assert (in_tmp / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_plot_without_matplotlib_says_how_to_install_it(in_tmp, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    result = run("sweep-lr", NOTES, "--plot", "sweep.png")
    assert result.exit_code == 2  # usage: an extra not installed, as for pyarrow and Dask
    assert result.stderr == (
        "Error: --plot needs matplotlib, which is not installed: pip install 'babynn[plot]'\n"
    )
    assert not (in_tmp / "sweep.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--min", "1", "--max", "0.1"), "Error: --min must be below --max (got 1 and 0.1)"),
        (("--min", "1", "--max", "1"), "Error: --min must be below --max (got 1 and 1)"),
        (("--min", "0"), "Error: --min must be a finite number above 0 (got 0)"),
        (("--max", "-1"), "Error: --max must be a finite number above 0 (got -1)"),
        (("--num", "1"), "Error: --num must be at least 2 (got 1)"),
        (("--lrs", "0.1"), "Error: --lrs needs at least two different rates"),
        (("--lrs", "0.1,0.1"), "Error: --lrs needs at least two different rates"),
        (("--lrs", "0.1,-2"), "Error: --lrs must be a finite number above 0 (got -2)"),
        (("--lrs", "0.1,fast"), "Error: --lrs takes numbers; got 'fast'"),
    ],
)
def test_bad_grids_exit_2(in_tmp, args, message):
    result = run("sweep-lr", NOTES, *args)
    assert result.exit_code == 2
    assert result.stderr == message + "\n"


def test_bad_data_as_for_fit(in_tmp):
    result = run("sweep-lr", "missing.csv")
    assert result.exit_code == 1
    assert result.stderr == "Error: cannot read 'missing.csv': no such file\n"
