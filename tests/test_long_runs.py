"""Long runs stay light: the history a run keeps, prints and holds is bounded, whatever its
epochs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import NOTES, run

BIN = Path(sys.executable).parent / "babynn"
MILLION = ("--lr", "0.1", "--epochs", "1000000", "--tol", "0", "-o", "m.json")


def test_a_million_epochs_print_a_bounded_history_with_the_first_best_and_last(in_tmp):
    result = run("fit", NOTES, *MILLION, "--json")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout) < 1_000_000  # was 61 MB for 414,000 epochs
    doc = json.loads(result.stdout)
    epochs = [h["epoch"] for h in doc["history"]]
    assert epochs[:2001] == list(range(2001))  # every epoch while the run is short
    assert epochs == sorted(set(epochs)) and epochs[-1] == doc["epochs_run"] == 1_000_000
    assert doc["best_loss_epoch"] in epochs
    assert len(epochs) < 3000
    past = np.array(epochs[2001:], dtype=float)
    ratios = past[1:] / past[:-1]
    assert ratios.max() < 1.03  # about 200 a decade, evenly spaced in log
    assert "then about 200 a decade" in doc["history_kept"]


def test_a_fixed_stride_when_asked(in_tmp):
    doc = json.loads(run("fit", NOTES, *MILLION, "--json", "--history-every", 100_000).stdout)
    epochs = [h["epoch"] for h in doc["history"]]
    assert set(range(0, 1_000_001, 100_000)) <= set(epochs)
    assert set(epochs) - set(range(0, 1_000_001, 100_000)) <= {doc["best_loss_epoch"], 999_999}
    assert "every 100000th epoch" in doc["history_kept"]


def peak_memory(*args: str) -> int:
    """Peak resident memory (kB) of `babynn *args` in a process of its own."""
    code = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
        "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(BIN), *args], capture_output=True)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_memory_does_not_grow_with_the_epochs(in_tmp):
    short = peak_memory("fit", str(NOTES), "--lr", "0.1", "--epochs", "10000", "--tol", "0",
                        "--json", "-o", "a.json")  # fmt: skip
    long = peak_memory("fit", str(NOTES), *MILLION, "--json")
    assert long < short * 1.1, (short, long)
