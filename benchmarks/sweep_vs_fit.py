"""A 20-rate `babynn sweep-lr` against one `babynn fit` of the same epochs, whole process.

    python benchmarks/sweep_vs_fit.py [--rows 1000000] [--features 10] [--epochs 200] [--repeat 3]

Target (issue 3): the sweep costs at most 2x the single fit.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from datasets import linear_csv


def babynn() -> str:
    here = Path(sys.executable).parent / "babynn"
    return str(here) if here.exists() else (shutil.which("babynn") or "babynn")


def best_time(args: list[str], repeat: int) -> float:
    best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run(args, cwd=tmp, check=True, capture_output=True)
            best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()
    data = str(linear_csv(a.rows, a.features))
    common = ["--epochs", str(a.epochs), "--tol", "0", "-q"]
    fit = best_time([babynn(), "fit", data, "--lr", "0.1", *common], a.repeat)
    sweep = best_time(
        [babynn(), "sweep-lr", data, "--min", "0.001", "--max", "10", "--num", "20", *common],
        a.repeat,
    )
    print(f"data: {a.rows} rows x {a.features} features, {a.epochs} epochs, best of {a.repeat}")
    print(f"fit (1 rate):       {fit:8.3f} s")
    print(f"sweep-lr (20 rates): {sweep:8.3f} s")
    print(f"ratio sweep / fit:   {sweep / fit:8.2f}  (target ≤ 2)")


if __name__ == "__main__":
    main()
