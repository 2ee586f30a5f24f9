"""One epoch of `babynn fit --hidden 64 --batch-size 64` on 10⁵ rows against the same network
trained with PyTorch on the CPU (optional: the script says so when PyTorch is missing).

    python benchmarks/mlp_vs_torch.py [--rows 100000] [--features 10] [--epochs 3]

Both: 10 standardised inputs → 64 tanh → 1, weights from N(0, 1/fan_in), plain SGD at η = 0.01,
rows reshuffled every epoch, float64. The time of an epoch is the best of --epochs, training only
(no loading, no start-up). Aim (issue 6): babynn no slower than PyTorch.
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

DATA = Path(__file__).resolve().parent / "data"


def nonlinear_csv(rows: int, features: int) -> Path:
    path = DATA / f"nonlinear_{rows}x{features}.csv"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        X = rng.uniform(-3, 3, size=(rows, features))
        y = np.sin(X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.normal(size=rows)
        header = ",".join([f"x{j}" for j in range(features)] + ["y"])
        np.savetxt(path, np.column_stack([X, y]), delimiter=",", header=header, comments="",
                   fmt="%.6f")  # fmt: skip
    return path


def babynn_epoch(path: Path, epochs: int) -> float:
    exe = Path(sys.executable).parent / "babynn"
    args = [str(exe) if exe.exists() else (shutil.which("babynn") or "babynn"), "fit", str(path)]
    args += ["--hidden", "64", "-b", "64", "--lr", "0.01", "--epochs", str(epochs), "--tol", "0"]
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([*args, "--json", "-q"], cwd=tmp, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr)
    seconds = [h["seconds"] for h in json.loads(out.stdout)["history"]]
    return float(np.diff(seconds).min())


def torch_epoch(path: Path, epochs: int) -> float:
    import pandas as pd
    import torch

    torch.set_num_threads(2)
    frame = pd.read_csv(path)
    X = frame.iloc[:, :-1].to_numpy()
    X = torch.tensor((X - X.mean(0)) / X.std(0))
    y = torch.tensor(frame.iloc[:, -1].to_numpy())[:, None]
    m = X.shape[1]
    gen = torch.Generator().manual_seed(0)
    W1 = (torch.randn(m, 64, generator=gen, dtype=torch.float64) / m**0.5).requires_grad_()
    b1 = (torch.randn(64, generator=gen, dtype=torch.float64) / m**0.5).requires_grad_()
    W2 = (torch.randn(64, 1, generator=gen, dtype=torch.float64) / 8).requires_grad_()
    b2 = (torch.randn(1, generator=gen, dtype=torch.float64) / 8).requires_grad_()
    opt = torch.optim.SGD([W1, b1, W2, b2], lr=0.01)
    best = float("inf")
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(X), generator=gen)
        for lo in range(0, len(X), 64):
            idx = order[lo : lo + 64]
            opt.zero_grad()
            loss = ((y[idx] - torch.tanh(X[idx] @ W1 + b1) @ W2 - b2) ** 2).sum(1).mean()
            loss.backward()
            opt.step()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    a = parser.parse_args()
    path = nonlinear_csv(a.rows, a.features)
    ours = babynn_epoch(path, a.epochs)
    print(f"babynn  --hidden 64 --batch-size 64: {ours * 1000:8.1f} ms an epoch ({a.rows} rows)")
    try:
        theirs = torch_epoch(path, a.epochs)
    except ImportError:
        print("PyTorch is not installed: skipped (pip install torch)")
        return
    print(f"PyTorch (CPU, same network and batches): {theirs * 1000:8.1f} ms an epoch")
    print(f"ratio babynn / PyTorch: {ours / theirs:.2f}  (aim: ≤ 1)")


if __name__ == "__main__":
    main()
