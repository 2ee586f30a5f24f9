"""How close `babynn fit` comes to least squares on each sample file, and how long it takes.

    python benchmarks/fit_samples.py [--repeat 5]

For each file in sample_data/ it runs the installed `babynn fit` with its defaults (and once more
with --tol 0 --epochs 5000 --lr at the fastest constant rate it reports), compares the weights with
np.linalg.lstsq on the same columns, and times the whole process (best of --repeat runs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = {
    "notes_example.csv": ["y"],
    "two_outputs.csv": ["y1", "y2"],
    "diabetes.csv": ["progression"],
}


def babynn() -> str:
    here = Path(sys.executable).parent / "babynn"
    return str(here) if here.exists() else (shutil.which("babynn") or "babynn")


def lstsq(path: Path, targets: list[str]) -> tuple[np.ndarray, float]:
    frame = pd.read_csv(path)
    X = frame.drop(columns=targets).to_numpy(float)
    Y = frame[targets].to_numpy(float)
    design = np.column_stack([X, np.ones(len(X))])
    sol = np.linalg.lstsq(design, Y, rcond=None)[0]
    return sol, float(((Y - design @ sol) ** 2).sum() / len(X))


def timed_fit(path: Path, targets: list[str], extra: list[str], repeat: int) -> tuple[dict, float]:
    args = [babynn(), "fit", str(path), "--json", "-o", "m.json", *extra]
    for t in targets:
        args += ["-t", t]
    best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            start = time.perf_counter()
            out = subprocess.run(args, cwd=tmp, capture_output=True, text=True, check=True).stdout
            best = min(best, time.perf_counter() - start)
    return json.loads(out), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{'file':<20} {'run':<28} {'epochs':>6} {'max rel err W̃':>14} {'L - L*':>10} {'time s':>7}"
    )
    for name, targets in SAMPLES.items():
        path = ROOT / "sample_data" / name
        ref, best_loss = lstsq(path, targets)
        doc, _ = timed_fit(path, targets, ["--epochs", "1"], 1)
        fastest = f"{doc['fastest_lr_full_batch']:.4g}"
        runs = (
            ("defaults", []),
            (
                f"--lr {fastest} --tol 0 -e 5000",
                ["--lr", fastest, "--tol", "0", "--epochs", "5000"],
            ),
        )
        for label, extra in runs:
            doc, seconds = timed_fit(path, targets, extra, args.repeat)
            got = np.vstack([np.array(doc["weights"]), np.array(doc["bias"])[None, :]])
            err = float(np.max(np.abs(got - ref) / np.abs(ref)))
            gap = doc["final_loss"] - best_loss
            print(
                f"{name:<20} {label:<28} {doc['epochs_run']:>6} {err:>14.2e} {gap:>10.1e}"
                f" {seconds:>7.3f}"
            )


if __name__ == "__main__":
    main()
