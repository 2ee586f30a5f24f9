"""babynn against its peers on the same files in the same run: the table of issue 5's targets.

    python benchmarks/run.py [--quick] [--repeat 3] [--json benchmarks/results/results.json]

Generates (seeded, once) a 10⁶ × 10 and a 10⁶ × 100 CSV in benchmarks/data/, then measures whole
processes (best of --repeat) and prints each target as a ratio. Peers are optional: the script
says what it skipped when scikit-learn or PyTorch is missing. --quick uses 10⁵ rows (a smoke test;
the targets are stated for 10⁶).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import sgd
from datasets import linear_csv

HERE = Path(__file__).resolve().parent
PY = sys.executable


def babynn_exe() -> str:
    here = Path(PY).parent / "babynn"
    return str(here) if here.exists() else (shutil.which("babynn") or "babynn")


def has(module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec('{module}') is None)"
    return subprocess.run([PY, "-c", code]).returncode == 0


def timed(args: list[str], repeat: int, cwd: str) -> tuple[float, str, int]:
    """Best wall time of `repeat` runs, the last run's stdout, its peak memory (bytes)."""
    best, out, peak = float("inf"), "", 0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr}")
        best, out = min(best, elapsed), done.stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        peak = max(peak, after * 1024) if after > before else peak
    return best, out, peak


def peak_memory(args: list[str], cwd: str) -> int:
    """Peak resident memory of one run, in bytes, measured by GNU time when it is there."""
    gnu_time = "/usr/bin/time"
    if os.path.exists(gnu_time):
        done = subprocess.run(
            [gnu_time, "-f", "%M", *args], cwd=cwd, capture_output=True, text=True
        )
        return int(done.stderr.strip().splitlines()[-1]) * 1024
    script = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True); "
    script += "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    done = subprocess.run([PY, "-c", script, *args], cwd=cwd, capture_output=True, text=True)
    return int(done.stdout) * 1024


def script(body: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(body)]


LSTSQ = """
import sys, json, numpy as np, pandas as pd
frame = pd.read_csv(sys.argv[1])
X = frame.iloc[:, :-1].to_numpy(); y = frame.iloc[:, -1].to_numpy()
design = np.column_stack([X, np.ones(len(X))])
w = np.linalg.lstsq(design, y, rcond=None)[0]
print(json.dumps({"loss": float(np.mean((y - design @ w) ** 2))}))
"""
LINEAR_REGRESSION = """
import sys, json, numpy as np, pandas as pd
from sklearn.linear_model import LinearRegression
frame = pd.read_csv(sys.argv[1])
X = frame.iloc[:, :-1].to_numpy(); y = frame.iloc[:, -1].to_numpy()
model = LinearRegression().fit(X, y)
print(json.dumps({"loss": float(np.mean((y - model.predict(X)) ** 2))}))
"""
SGD = """
import sys, json, time, numpy as np, pandas as pd
from sklearn.linear_model import SGDRegressor
from sklearn.preprocessing import StandardScaler
frame = pd.read_csv(sys.argv[1])
X = StandardScaler().fit_transform(frame.iloc[:, :-1].to_numpy()); y = frame.iloc[:, -1].to_numpy()
start = time.perf_counter()
model = SGDRegressor(random_state=0).fit(X, y)
seconds = time.perf_counter() - start
print(json.dumps({"loss": float(np.mean((y - model.predict(X)) ** 2)), "epochs": int(model.n_iter_),
                  "seconds": seconds}))
"""
TORCH_GD = """
import sys, json, numpy as np, pandas as pd, torch
torch.set_num_threads(2)
frame = pd.read_csv(sys.argv[1]); epochs = int(sys.argv[2]); lr = float(sys.argv[3])
X = frame.iloc[:, :-1].to_numpy(); X = (X - X.mean(0)) / X.std(0)
X = torch.tensor(X); y = torch.tensor(frame.iloc[:, -1].to_numpy())[:, None]
gen = torch.Generator().manual_seed(0)
W = (torch.randn(X.shape[1], 1, generator=gen, dtype=torch.float64) / X.shape[1] ** 0.5)
W.requires_grad_(); b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
opt = torch.optim.SGD([W, b], lr=lr)
for _ in range(epochs):
    opt.zero_grad(); loss = ((y - X @ W - b) ** 2).mean(); loss.backward(); opt.step()
with torch.no_grad():
    print(json.dumps({"loss": float(((y - X @ W - b) ** 2).mean())}))
"""
LOADING = """
import sys, time, json, pandas as pd
from babynn_cli.data.read import load
best = {"pandas": 1e9, "babynn": 1e9}
for _ in range(int(sys.argv[2])):
    start = time.perf_counter(); frame = pd.read_csv(sys.argv[1])
    best["pandas"] = min(best["pandas"], time.perf_counter() - start); del frame
    start = time.perf_counter(); dataset = load(sys.argv[1])
    best["babynn"] = min(best["babynn"], time.perf_counter() - start); del dataset
print(json.dumps(best))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10⁵ rows instead of 10⁶")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "results.json")
    a = parser.parse_args()
    rows = 100_000 if a.quick else 1_000_000
    narrow, wide = linear_csv(rows, 10), linear_csv(rows, 100)
    bab = babynn_exe()
    sklearn, torch = has("sklearn"), has("torch")
    skipped = [name for name, ok in (("scikit-learn", sklearn), ("PyTorch", torch)) if not ok]
    results: dict[str, object] = {"rows": rows, "repeat": a.repeat, "skipped": skipped}
    lines: list[tuple[str, str, str, str]] = []

    def row(target: str, what: str, value: float, limit: str) -> None:
        lines.append((target, what, f"{value:.3g}", limit))
        results[what] = value

    with tempfile.TemporaryDirectory() as tmp:
        # 1. fit to a relative gap of 1e-6, whole process, against read_csv + lstsq
        lstsq_t, out, _ = timed([*script(LSTSQ), str(narrow)], a.repeat, tmp)
        optimum = json.loads(out)["loss"]
        fit_args = [bab, "fit", str(narrow), "--lr", "0.5", "--json", "-q"]
        fit_t, out, _ = timed(fit_args, a.repeat, tmp)
        fitted = json.loads(out)
        gap = (fitted["final_loss"] - optimum) / optimum
        results["fit_relative_gap"] = gap
        results["fit_epochs"] = fitted["epochs_run"]
        row("1", "fit (gap 1e-6) / read_csv+lstsq", fit_t / lstsq_t, "≤ 1.1")
        lines.append(("", f"  fit: {fit_t:.3f} s, {fitted['epochs_run']} epochs, gap {gap:.1e}",
                      "", ""))  # fmt: skip
        if sklearn:
            lr_t, _, _ = timed([*script(LINEAR_REGRESSION), str(narrow)], a.repeat, tmp)
            row("1", "fit / sklearn LinearRegression script", fit_t / lr_t, "report")
            sgd_t, out, _ = timed([*script(SGD), str(narrow)], a.repeat, tmp)
            sgd_fit = json.loads(out)
            sgd_gap = (sgd_fit["loss"] - optimum) / optimum
            results["sgdregressor_relative_gap"] = sgd_gap
            row("1", "fit / sklearn SGDRegressor script", fit_t / sgd_t, "report")
            lines.append(
                ("", f"  SGDRegressor: {sgd_fit['epochs']} epochs, gap {sgd_gap:.1e}", "", "")
            )
        if torch:
            epochs = str(fitted["epochs_run"])
            torch_t, out, _ = timed([*script(TORCH_GD), str(narrow), epochs, "0.5"], a.repeat, tmp)
            torch_gap = (json.loads(out)["loss"] - optimum) / optimum
            results["torch_relative_gap"] = torch_gap
            row("1", f"fit / PyTorch full-batch GD ({epochs} epochs)", fit_t / torch_t, "report")

        # 2. 10,000 full-batch epochs against 10
        base = [bab, "fit", str(narrow), "--tol", "0", "-q", "--lr", "0.1"]
        ten, _, _ = timed([*base, "--epochs", "10"], a.repeat, tmp)
        many, _, _ = timed([*base, "--epochs", "10000"], a.repeat, tmp)
        row("2", "10,000 epochs / 10 epochs", many / ten, "≤ 1.2")

        # 3. peak memory on the wide file against its float64 array
        array_bytes = rows * 101 * 8
        peak = peak_memory([bab, "fit", str(wide), "-q", "--epochs", "10"], tmp)
        row("3", "peak memory of fit / float64 array (×101 cols)", peak / array_bytes, "≤ 1.5")

        # 4. loading against pandas' C engine reading the whole file (in one process)
        for label, path in (("×11", narrow), ("×101", wide)):
            done = subprocess.run(
                [*script(LOADING), str(path), str(a.repeat)], capture_output=True, text=True
            )
            load = json.loads(done.stdout)
            row("4", f"loading {label} / pandas read_csv", load["babynn"] / load["pandas"], "≤ 1.0")

        # 5. a 20-rate sweep of 200 epochs against one fit of 200 epochs
        common = ["--epochs", "200", "--tol", "0", "-q"]
        one, _, _ = timed([bab, "fit", str(narrow), "--lr", "0.1", *common], a.repeat, tmp)
        sweep_args = [bab, "sweep-lr", str(narrow), "--num", "20", *common]
        sweep, _, _ = timed(sweep_args, a.repeat, tmp)
        row("5", "sweep-lr (20 rates) / fit, 200 epochs", sweep / one, "≤ 1.2")

        # 6. start-up
        version, _, _ = timed([bab, "--version"], a.repeat + 4, tmp)
        imports, _, _ = timed([PY, "-c", "import typer, rich"], a.repeat + 4, tmp)
        row("6", "babynn --version / import typer, rich", version / imports, "≤ 1.5")

        # 7. stochastic and minibatch throughput against SGDRegressor's (benchmarks/sgd.py: more)
        if sklearn:
            theirs = sgd.peer(sgd.SGD_REGRESSOR, narrow, 3)
            results["sgdregressor_samples_per_second"] = theirs
            compiled = sgd.compiled_installed()
            for batch, numpy_limit, limit in ((1, "≥ 0.5", "≥ 1.0"), (32, "report", "report"),
                                              (256, "report", "≥ 5")):  # fmt: skip
                ours = sgd.babynn(narrow, rows, batch, 3, compiled=False)
                row("7", f"batch {batch} samples/s / SGDRegressor's, numpy", ours / theirs,
                    numpy_limit)  # fmt: skip
                if compiled:
                    ours = sgd.babynn(narrow, rows, batch, 3, compiled=True)
                    row("7", f"batch {batch} samples/s / SGDRegressor's, babynn[fast]",
                        ours / theirs, limit)  # fmt: skip

    width = max(len(w) for _, w, _, _ in lines)
    print(f"{rows} rows; best of {a.repeat}; skipped: {', '.join(skipped) or 'nothing'}")
    print(f"{'#':<2} {'measure':<{width}} {'ratio':>8}  target")
    for target, what, value, limit in lines:
        print(f"{target:<2} {what:<{width}} {value:>8}  {limit}")
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {a.json}")


if __name__ == "__main__":
    main()
