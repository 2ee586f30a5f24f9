"""`babynn fit DATA` with no options: epochs theory predicted against epochs taken, the gap left,
and the time, on every sample file and on data sets made offline.

    python benchmarks/fit_samples.py [--repeat 3]

The data: the files in sample_data/; the regression sets that ship inside scikit-learn (diabetes,
Linnerud's three outputs) and Friedman's three synthetic ones (make_friedman1/2/3, seeded), when
scikit-learn is installed; and two features with a correlation that makes κ exactly 10, 10³, 10⁵
and 10⁷ (the construction of tests/test_auto.py). Each runs the installed `babynn fit` with no
option but --json, whole process, best of --repeat.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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


def conditioned(kappa: float, rows: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(rows, 2))
    Q, _ = np.linalg.qr(Z - Z.mean(axis=0))
    rho = (kappa - 1) / (kappa + 1)
    a = Q[:, 0] * np.sqrt(rows)
    b = (rho * Q[:, 0] + np.sqrt(1 - rho**2) * Q[:, 1]) * np.sqrt(rows)
    return pd.DataFrame({"a": a * 5 + 10, "b": b - 2, "y": 3 + a + 2 * b + rng.normal(size=rows)})


def data_sets(folder: Path) -> Iterator[tuple[str, Path, list[str]]]:
    for name, targets in SAMPLES.items():
        yield name, ROOT / "sample_data" / name, targets
    try:
        from sklearn import datasets
    except ImportError:
        print("scikit-learn is not installed: its data sets are skipped")
    else:
        frames = {
            "sklearn diabetes": datasets.load_diabetes(as_frame=True).frame,
            "sklearn linnerud": pd.concat(
                datasets.load_linnerud(return_X_y=True, as_frame=True), axis=1
            ),
        }
        for k, make in enumerate(
            (datasets.make_friedman1, datasets.make_friedman2, datasets.make_friedman3), 1
        ):
            X, y = make(n_samples=2000, random_state=0)
            frames[f"friedman{k}"] = pd.DataFrame(X).add_prefix("x").assign(y=y)
        for name, frame in frames.items():
            path = folder / f"{name.replace(' ', '_')}.csv"
            frame.to_csv(path, index=False)
            targets = ["Weight", "Waist", "Pulse"] if "linnerud" in name else [frame.columns[-1]]
            yield name, path, targets
    for kappa in (1e1, 1e3, 1e5, 1e7):
        path = folder / f"kappa_{kappa:.0e}.csv"
        conditioned(kappa).to_csv(path, index=False)
        yield f"κ = {kappa:.0e}", path, ["y"]


def timed_fit(path: Path, targets: list[str], repeat: int, cwd: str) -> tuple[dict, float]:
    args = [babynn(), "fit", str(path), "--json", "-o", "m.json"]
    for t in targets:
        args += ["-t", t]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run(args, cwd=cwd, capture_output=True, text=True).stdout
        best = min(best, time.perf_counter() - start)
    return json.loads(out), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()
    header = f"{'data':<22} {'κ':>9} {'η':>8} {'predicted':>9} {'taken':>9} {'(L-L*)/L*':>10}"
    print(header + f" {'verdict':<10} {'time s':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, targets in data_sets(Path(tmp)):
            doc, seconds = timed_fit(path, targets, a.repeat, tmp)
            kappa = doc["stable_lr_full_batch"] and (
                (2 / doc["stable_lr_full_batch"])
                / (2 / doc["fastest_lr_full_batch"] - 2 / doc["stable_lr_full_batch"])
            )
            predicted = doc["epochs_predicted"]
            print(
                f"{name:<22} {kappa:>9.3g} {doc['lr']:>8.4g} "
                f"{predicted if predicted is not None else '>1e6':>9} {doc['epochs_run']:>9} "
                f"{doc['relative_gap']:>10.2e} {doc['verdict']:<10} {seconds:>7.2f}"
            )


if __name__ == "__main__":
    main()
