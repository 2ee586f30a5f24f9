"""Networks with no options against scikit-learn's MLPRegressor and linear regression (issue 22).

    python benchmarks/networks.py [--sets diabetes,friedman1] [--arch 32] [--torch]

Each public data set is split 80/20 (seeded); babynn sees only the training file and is run as a
user runs it, a whole process with no option but the architecture (`--hidden 32`, and `--hidden 64
--hidden 32 --activation relu`), then `babynn predict` scores the test file. Beside it, on the same
split and in the same run: scikit-learn's MLPRegressor with the same hidden layers and activation
and its other defaults (Adam, batch min(200, N), at most 200 epochs), and MLPRegressor() with all
its defaults (100 relu units), both on standardised features and targets, and LinearRegression;
with --torch, a PyTorch loop (Adam, batch 200, 200 epochs); and babynn again with `--optimizer
adam` (the adam R² column: no other option). The margin is babynn's test R² less the
best of them all (target: ≥ −0.02); the time ratio is against the MLPRegressor of the same
architecture. Times are whole processes (start-up, reading, choosing the rate, training). Needs
scikit-learn and statsmodels (pip install -e '.[bench]' statsmodels); the data sets ship with them.
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

HERE = Path(__file__).resolve().parent
PY = sys.executable
SEED = 0
ARCHES = {
    "32": ["--hidden", "32"],
    "64-32 relu": ["--hidden", "64", "--hidden", "32", "--activation", "relu"],
}


def babynn_exe() -> str:
    here = Path(PY).parent / "babynn"
    return str(here) if here.exists() else (shutil.which("babynn") or "babynn")


def datasets() -> dict[str, pd.DataFrame]:
    """Public regression sets that load offline, the target last."""
    from sklearn.datasets import load_diabetes, make_friedman1, make_friedman2, make_friedman3
    from statsmodels import datasets as sm

    def frame(X: np.ndarray, y: np.ndarray, prefix: str = "x") -> pd.DataFrame:
        out = pd.DataFrame(X, columns=[f"{prefix}{i}" for i in range(X.shape[1])])
        out["y"] = y
        return out

    sets = {}
    d = load_diabetes(as_frame=True)
    sets["diabetes"] = pd.concat([d.data, d.target.rename("y")], axis=1)
    sets["friedman1"] = frame(*make_friedman1(n_samples=5000, noise=1.0, random_state=SEED))
    sets["friedman2"] = frame(*make_friedman2(n_samples=5000, noise=10.0, random_state=SEED))
    sets["friedman3"] = frame(*make_friedman3(n_samples=5000, noise=0.1, random_state=SEED))
    macro = sm.macrodata.load_pandas().data.drop(columns=["year", "quarter"])
    sets["macrodata"] = macro[[c for c in macro.columns if c != "realgdp"] + ["realgdp"]]
    fair = sm.fair.load_pandas().data
    sets["fair"] = fair[[c for c in fair.columns if c != "affairs"] + ["affairs"]]
    star = sm.star98.load_pandas().data.drop(columns=["NBELOW"])
    sets["star98"] = star[[c for c in star.columns if c != "NABOVE"] + ["NABOVE"]]
    randhie = sm.randhie.load_pandas().data
    sets["randhie"] = randhie[[c for c in randhie.columns if c != "mdvis"] + ["mdvis"]]
    engel = sm.engel.load_pandas().data
    sets["engel"] = engel[["income", "foodexp"]]
    sun = sm.sunspots.load_pandas().data
    sets["sunspots"] = sun[["YEAR", "SUNACTIVITY"]]
    anes = sm.anes96.load_pandas().data
    sets["anes96"] = anes[[c for c in anes.columns if c != "selfLR"] + ["selfLR"]]
    nonlinear = pd.read_csv(HERE.parent / "sample_data" / "nonlinear.csv")
    sets["nonlinear"] = nonlinear
    return sets


def split(frame: pd.DataFrame, folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(frame))
    cut = round(0.8 * len(frame))
    train, test = folder / "train.csv", folder / "test.csv"
    frame.iloc[order[:cut]].to_csv(train, index=False)
    frame.iloc[order[cut:]].to_csv(test, index=False)
    return train, test


PEER = """
import json, sys, time, warnings
import numpy as np, pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
warnings.simplefilter("ignore")
train, test = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
hidden = tuple(int(h) for h in sys.argv[3].split(","))
activation = sys.argv[4]
Xtr, ytr = train.iloc[:, :-1].to_numpy(float), train.iloc[:, -1].to_numpy(float)
Xte, yte = test.iloc[:, :-1].to_numpy(float), test.iloc[:, -1].to_numpy(float)
if sys.argv[5] == "linear":
    model = LinearRegression().fit(Xtr, ytr)
    print(json.dumps({"r2": r2_score(yte, model.predict(Xte))}))
    raise SystemExit
xs, ys = StandardScaler().fit(Xtr), StandardScaler().fit(ytr[:, None])
mlp = MLPRegressor(hidden_layer_sizes=hidden, activation=activation, random_state=0)
mlp.fit(xs.transform(Xtr), ys.transform(ytr[:, None]).ravel())
pred = ys.inverse_transform(mlp.predict(xs.transform(Xte))[:, None]).ravel()
print(json.dumps({"r2": r2_score(yte, pred), "epochs": mlp.n_iter_}))
"""

TORCH = """
import json, sys
import numpy as np, pandas as pd, torch
torch.manual_seed(0); torch.set_num_threads(1)
train, test = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
hidden = [int(h) for h in sys.argv[3].split(",")]
act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[sys.argv[4]]
Xtr, ytr = train.iloc[:, :-1].to_numpy(float), train.iloc[:, -1].to_numpy(float)
Xte, yte = test.iloc[:, :-1].to_numpy(float), test.iloc[:, -1].to_numpy(float)
mx, sx = Xtr.mean(0), Xtr.std(0) + 1e-12
my, sy = ytr.mean(), ytr.std()
X = torch.tensor((Xtr - mx) / sx, dtype=torch.float64)
y = torch.tensor((ytr - my) / sy, dtype=torch.float64)[:, None]
layers, width = [], X.shape[1]
for h in hidden:
    layers += [torch.nn.Linear(width, h).double(), act()]
    width = h
net = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1).double())
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
B = min(200, len(X))
for epoch in range(200):
    order = torch.randperm(len(X))
    for lo in range(0, len(X), B):
        idx = order[lo:lo + B]
        opt.zero_grad(); loss = ((net(X[idx]) - y[idx]) ** 2).mean(); loss.backward(); opt.step()
with torch.no_grad():
    pred = net(torch.tensor((Xte - mx) / sx, dtype=torch.float64)).numpy().ravel() * sy + my
print(json.dumps({"r2": 1 - ((yte - pred) ** 2).sum() / ((yte - yte.mean()) ** 2).sum()}))
"""


def timed(args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - start, done


def babynn_run(train: Path, test: Path, arch: list[str], cwd: Path) -> dict:
    exe = babynn_exe()
    seconds, done = timed([exe, "fit", str(train), *arch, "-o", "m.json", "--json", "-q"], cwd)
    if done.returncode not in (0,):
        return {"r2": float("nan"), "seconds": seconds, "verdict": f"exit {done.returncode}",
                "epochs": None, "error": done.stderr.strip()[-200:]}  # fmt: skip
    doc = json.loads(done.stdout)
    pred = subprocess.run(
        [exe, "predict", "m.json", str(test), "--json", "-q"], cwd=cwd, capture_output=True,
        text=True,
    )  # fmt: skip
    r2 = json.loads(pred.stdout)["r2"][0]
    return {"r2": r2, "seconds": seconds, "verdict": doc["verdict"], "epochs": doc["epochs_run"],
            "lr": doc["lr"], "batch": doc.get("batch_size")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", help="comma-separated names (default: all)")
    parser.add_argument("--arch", help="comma-separated: 32, '64-32 relu' (default: both)")
    parser.add_argument("--torch", action="store_true", help="a PyTorch loop beside them")
    parser.add_argument("--json", help="write the rows here too")
    parser.add_argument("--extra", default="", help="more babynn fit options (for trials)")
    a = parser.parse_args()
    sets = datasets()
    names = a.sets.split(",") if a.sets else list(sets)
    arches = a.arch.split(",") if a.arch else list(ARCHES)
    rows = []
    header = (
        f"{'set':10} {'rows':>6} {'arch':11} {'babynn R²':>9} {'time':>6} {'epochs':>6} "
        f"{'η':>8} {'verdict':14} {'MLP R²':>7} {'time':>6} {'MLP()':>7} {'linear':>7} "
        f"{'margin':>7} {'×time':>5} {'adam R²':>8}"
    )
    print(header + ("  torch R²  time" if a.torch else ""))
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            folder = Path(tmp) / name
            folder.mkdir()
            train, test = split(sets[name], folder)
            linear = json.loads(
                subprocess.run([PY, "-c", PEER, str(train), str(test), "1", "relu", "linear"],
                               capture_output=True, text=True).stdout
            )["r2"]  # fmt: skip
            for arch in arches:
                flags = ARCHES[arch]
                hidden = ",".join(flags[i + 1] for i, f in enumerate(flags) if f == "--hidden")
                act = "relu" if "relu" in arch else "tanh"
                ours = babynn_run(train, test, [*flags, *a.extra.split()], folder)
                adam = babynn_run(
                    train, test, [*flags, "--optimizer", "adam", *a.extra.split()], folder
                )
                seconds, done = timed(
                    [PY, "-c", PEER, str(train), str(test), hidden, act, "mlp"], folder
                )
                peer = json.loads(done.stdout)
                everything = [PY, "-c", PEER, str(train), str(test), "100", "relu", "mlp"]
                done = subprocess.run(everything, capture_output=True, text=True)
                default = json.loads(done.stdout)
                best = max(peer["r2"], default["r2"], linear)
                row = {"set": name, "rows": len(sets[name]), "arch": arch, "babynn": ours,
                       "mlp": {**peer, "seconds": seconds}, "mlp_defaults": default,
                       "linear": linear, "margin": ours["r2"] - best,
                       "babynn_adam": adam}  # fmt: skip
                line = (
                    f"{name:10} {len(sets[name]):6d} {arch:11} {ours['r2']:9.4f} "
                    f"{ours['seconds']:6.1f} {ours['epochs']!s:>6} "
                    f"{ours.get('lr', float('nan')):8.3g} {ours['verdict']:14} "
                    f"{peer['r2']:7.4f} {seconds:6.1f} {default['r2']:7.4f} {linear:7.4f} "
                    f"{row['margin']:+7.3f} {ours['seconds'] / seconds:5.2f} {adam['r2']:8.4f}"
                )
                if a.torch:
                    t_seconds, t_done = timed(
                        [PY, "-c", TORCH, str(train), str(test), hidden, act], folder
                    )
                    t_r2 = json.loads(t_done.stdout)["r2"] if t_done.returncode == 0 else None
                    row["torch"] = {"r2": t_r2, "seconds": t_seconds}
                    line += f"  {t_r2 if t_r2 is None else round(t_r2, 4)!s:>8} {t_seconds:5.1f}"
                print(line, flush=True)
                if "error" in ours:
                    print("   ", ours["error"], flush=True)
                rows.append(row)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    fails = [r for r in rows if not r["margin"] >= -0.02]
    print(f"{len(rows) - len(fails)} of {len(rows)} within 0.02 of the best peer")
    big = [r for r in rows if r["rows"] >= 4000]
    slow = [r for r in big if r["babynn"]["seconds"] > 1.5 * r["mlp"]["seconds"]]
    print(f"{len(big) - len(slow)} of {len(big)} runs on 4,000 rows or more within 1.5× the time")


if __name__ == "__main__":
    main()
