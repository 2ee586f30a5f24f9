"""Network and minibatch epochs alone and beside a busy core: what BLAS threads cost or gain.

    python benchmarks/threads.py [--rows 100000]

Each case runs the installed `babynn fit` on the seeded --rows × 10 file (benchmarks/datasets.py)
and takes its best epoch after the first (babynn's own --json history), twice: alone, and beside a
process that keeps one core busy (`while True: pass`). Run it with OPENBLAS_NUM_THREADS=1 (which
babynn then leaves alone) or on an older babynn to compare with every product on every thread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from datasets import linear_csv

CASES = {
    "--hidden 64, batch 64": ["--hidden", "64", "-b", "64", "--epochs", "4"],
    "--hidden 256, batch 256": ["--hidden", "256", "-b", "256", "--epochs", "4"],
    "--hidden 128 64, batch 128": [
        "--hidden", "128", "--hidden", "64", "-b", "128", "--epochs", "4",
    ],
    "--hidden 64 32 relu, batch 8": [
        "--hidden", "64", "--hidden", "32", "--activation", "relu", "-b", "8", "--epochs", "3",
    ],
    "--hidden 64, full batch": ["--hidden", "64", "--epochs", "30"],
    "affine, batch 32": ["-b", "32", "--epochs", "4"],
}  # fmt: skip


def epoch_seconds(path: Path, args: list[str]) -> float:
    exe = Path(sys.executable).parent / "babynn"
    command = [str(exe), "fit", str(path), *args, "--lr", "0.01", "--tol", "0", "--json", "-q"]
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([*command, "-o", "m.json"], cwd=tmp, capture_output=True, text=True)
    seconds = np.diff([h["seconds"] for h in json.loads(done.stdout)["history"]])
    return float(seconds[1:].min() if len(seconds) > 1 else seconds.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    a = parser.parse_args()
    path = linear_csv(a.rows, 10)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"{a.rows} rows; OPENBLAS_NUM_THREADS={threads}; ms per epoch (best of 2)")
    for name, args in CASES.items():
        alone = min(epoch_seconds(path, args) for _ in range(2))
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.3)
            beside = min(epoch_seconds(path, args) for _ in range(2))
        finally:
            busy.kill()
        print(f"{name:<30} alone {alone * 1e3:7.0f}   beside a busy core {beside * 1e3:7.0f}")


if __name__ == "__main__":
    main()
