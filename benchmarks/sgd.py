"""Stochastic and minibatch descent against the peers, in samples per second of an epoch.

    python benchmarks/sgd.py [--rows 1000000] [--mlp-rows 20000] [--epochs 3]

Same data, same per-sample semantics for everyone: each epoch visits every row once in a fresh
seeded order and updates after every batch, float64, standardised features.

- The affine model on the seeded 10⁶ × 10 file (benchmarks/datasets.py): `babynn fit -b B` with
  numpy alone (BABYNN_COMPILED=0, the default install) and with the compiled loop (babynn[fast],
  when numba is installed), against scikit-learn's SGDRegressor (penalty None, constant rate, tol
  None: per-sample SGD; it has no minibatches, so its one figure is the yardstick for every B).
- A network, 10 → 32 relu → 1, batch 1: `babynn fit --hidden 32 -b 1` against scikit-learn's
  MLPRegressor(solver="sgd", batch_size=1, momentum 0) and a PyTorch loop with batch 1 (one thread,
  its fastest here).

An epoch's time is the best of the epochs after the first (the first loads compiled code), from
babynn's own --json history; the peers time their epochs in-process. Peers that are not installed
are skipped, and the script says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
from datasets import linear_csv

PY = sys.executable

SGD_REGRESSOR = """
import sys, json, time, numpy as np, pandas as pd
from sklearn.linear_model import SGDRegressor
frame = pd.read_csv(sys.argv[1]); epochs = int(sys.argv[2])
X = frame.iloc[:, :-1].to_numpy(); X = (X - X.mean(0)) / X.std(0); y = frame.iloc[:, -1].to_numpy()
model = SGDRegressor(penalty=None, learning_rate="constant", eta0=1e-4, tol=None, random_state=0)
best = 1e9
for _ in range(epochs):
    start = time.perf_counter(); model.partial_fit(X, y)
    best = min(best, time.perf_counter() - start)
print(json.dumps({"samples_per_second": len(X) / best}))
"""
MLP_REGRESSOR = """
import sys, json, time, warnings, numpy as np, pandas as pd
from sklearn.neural_network import MLPRegressor
warnings.simplefilter("ignore")
frame = pd.read_csv(sys.argv[1]); epochs = int(sys.argv[2])
X = frame.iloc[:, :-1].to_numpy(); X = (X - X.mean(0)) / X.std(0); y = frame.iloc[:, -1].to_numpy()
model = MLPRegressor(hidden_layer_sizes=(32,), solver="sgd", batch_size=1, learning_rate_init=1e-3,
                     momentum=0.0, nesterovs_momentum=False, alpha=0.0, max_iter=1, shuffle=True,
                     random_state=0, tol=0.0)
best = 1e9
for _ in range(epochs):
    start = time.perf_counter(); model.partial_fit(X, y)
    best = min(best, time.perf_counter() - start)
print(json.dumps({"samples_per_second": len(X) / best}))
"""
TORCH_BATCH_1 = """
import sys, json, time, numpy as np, pandas as pd, torch
torch.set_num_threads(1)
frame = pd.read_csv(sys.argv[1]); epochs = int(sys.argv[2])
X = frame.iloc[:, :-1].to_numpy(); X = torch.tensor((X - X.mean(0)) / X.std(0))
y = torch.tensor(frame.iloc[:, -1].to_numpy())[:, None]
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
net = net.double()
opt = torch.optim.SGD(net.parameters(), lr=1e-3)
best = 1e9
for _ in range(epochs):
    start = time.perf_counter()
    for i in torch.randperm(len(X)).tolist():
        opt.zero_grad(); loss = ((net(X[i : i + 1]) - y[i : i + 1]) ** 2).mean()
        loss.backward(); opt.step()
    best = min(best, time.perf_counter() - start)
print(json.dumps({"samples_per_second": len(X) / best}))
"""


def has(module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec('{module}') is None)"
    return subprocess.run([PY, "-c", code]).returncode == 0


def compiled_installed() -> bool:
    """Whether this babynn has its compiled loop (babynn[fast])."""
    code = "from babynn_cli.core.compiled import kernel; assert kernel()"
    return subprocess.run([PY, "-c", code], capture_output=True).returncode == 0


def peer(body: str, path: Path, epochs: int) -> float:
    """Samples per second of the peer's best epoch."""
    args = [PY, "-c", textwrap.dedent(body), str(path), str(epochs)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout)["samples_per_second"])


def babynn(path: Path, rows: int, batch: int, epochs: int, compiled: bool, *extra: str) -> float:
    """Samples per second of babynn's best epoch after the first."""
    exe = Path(PY).parent / "babynn"
    args = [str(exe), "fit", str(path), "-b", str(batch), "--epochs", str(epochs), "--tol", "0"]
    args += ["--lr", "1e-4", "--json", "-q", *extra]
    env = {**os.environ, "BABYNN_COMPILED": "1" if compiled else "0"}
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 3):  # 3: a verdict of diverged is no concern of a timing
        raise RuntimeError(done.stderr)
    seconds = np.diff([h["seconds"] for h in json.loads(done.stdout)["history"]])
    return rows / float(seconds[1:].min() if len(seconds) > 1 else seconds.min())


def measure(rows: int, mlp_rows: int, epochs: int) -> dict[str, float]:
    """The table's figures, keyed by what they measure."""
    narrow, small = linear_csv(rows, 10), linear_csv(mlp_rows, 10)
    sklearn, torch = has("sklearn"), has("torch")
    compiled = (
        subprocess.run(
            [PY, "-c", "from babynn_cli.core.compiled import kernel; assert kernel()"]
        ).returncode
        == 0
    )
    out: dict[str, float] = {}
    for batch in (1, 32, 256):
        out[f"babynn numpy, batch {batch}"] = babynn(narrow, rows, batch, epochs, False)
        if compiled:
            out[f"babynn compiled, batch {batch}"] = babynn(narrow, rows, batch, epochs, True)
    if sklearn:
        out["SGDRegressor (per sample)"] = peer(SGD_REGRESSOR, narrow, epochs)
    hidden = ("--hidden", "32", "--activation", "relu")
    out["babynn --hidden 32, batch 1"] = babynn(small, mlp_rows, 1, epochs, False, *hidden)
    if sklearn:
        out["MLPRegressor sgd, batch 1"] = peer(MLP_REGRESSOR, small, epochs)
    if torch:
        out["PyTorch loop, batch 1"] = peer(TORCH_BATCH_1, small, epochs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--mlp-rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    a = parser.parse_args()
    figures = measure(a.rows, a.mlp_rows, a.epochs)
    sgd = figures.get("SGDRegressor (per sample)")
    mlp = [figures.get("MLPRegressor sgd, batch 1"), figures.get("PyTorch loop, batch 1")]
    width = max(map(len, figures))
    print(f"{a.rows} rows (network: {a.mlp_rows}); samples/s of the best epoch of {a.epochs}")
    for what, rate in figures.items():
        if "hidden" in what or "MLP" in what or "PyTorch" in what:
            against = [
                f"{rate / r:.2f}× {name}"
                for r, name in zip(mlp, ("MLPR", "torch"), strict=True)
                if r
            ]
        else:
            against = [f"{rate / sgd:.2f}× SGDRegressor"] if sgd else []
        print(f"{what:<{width}} {rate / 1e6:8.3f} M/s  {'  '.join(against)}")


if __name__ == "__main__":
    main()
