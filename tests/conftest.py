from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from babynn_cli.cli import app

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data"
NOTES = SAMPLES / "notes_example.csv"
TWO = SAMPLES / "two_outputs.csv"
DIABETES = SAMPLES / "diabetes.csv"


@pytest.fixture(params=["numpy", "compiled"])
def descent_path(request, monkeypatch):
    """Minibatch descent of the affine model both ways: numpy's batch maps, and the compiled loop
    (numba, babynn[fast]; skipped where it is not installed)."""
    from babynn_cli.core import compiled

    if request.param == "numpy":
        monkeypatch.setattr(compiled, "kernel", lambda: None)
    elif compiled.kernel() is None:
        pytest.skip("numba is not installed")
    else:
        monkeypatch.setattr(compiled, "pays", lambda *_: True)  # whatever the run
    return request.param


def run(*args: str | Path, input: str | None = None):
    """Invoke the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def run_json(*args: str | Path) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def lstsq_solution(path: Path, targets: list[str] | None = None, intercept: bool = True):
    """The least-squares weights (m, n) and bias (n,) by np.linalg.lstsq, and the loss L*."""
    frame = pd.read_csv(path)
    targets = targets or [frame.columns[-1]]
    X = frame.drop(columns=targets).to_numpy(float)
    Y = frame[targets].to_numpy(float)
    design = np.column_stack([X, np.ones(len(X))]) if intercept else X
    sol = np.linalg.lstsq(design, Y, rcond=None)[0]
    R = Y - design @ sol
    loss = float((R**2).sum() / len(X))
    if intercept:
        return sol[:-1], sol[-1], loss
    return sol, np.zeros(Y.shape[1]), loss


def central_differences(loss, params: dict, h: float = 1e-6) -> dict:
    """∂loss/∂p for every entry of every array in params, by (loss(p + h) - loss(p - h)) / 2h."""
    numeric = {}
    for name, value in params.items():
        numeric[name] = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            up = {k: v.copy() for k, v in params.items()}
            down = {k: v.copy() for k, v in params.items()}
            up[name][idx] += h
            down[name][idx] -= h
            numeric[name][idx] = (loss(up) - loss(down)) / (2 * h)
    return numeric


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """RunEnd in an empty folder, so the default model.json lands there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
