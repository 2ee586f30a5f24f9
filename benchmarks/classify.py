"""Classification with no options against scikit-learn (issue 24).

    python benchmarks/classify.py [--sets iris,wine] [--seeds 3]

Public classification sets, written as CSVs with their labels as text, split 80/20 (seeded).
babynn is run as a user runs it, whole processes: `babynn fit train.csv` (the affine model: logistic
or softmax regression, no options) and `babynn fit train.csv --hidden 32`, then `babynn predict
--json` on the test file. Beside them, on the same split and in the same run: scikit-learn's
StandardScaler + LogisticRegression() (its defaults: L2 with C = 1, lbfgs) and StandardScaler +
MLPClassifier(hidden_layer_sizes=(32,)) (Adam, its other defaults, max_iter 1000 so that it ends).
Reported: test accuracy and log-loss, each margin (target: babynn ≥ peer − 0.03 in accuracy),
and seconds (babynn's whole processes, fit and predict; scikit-learn's fit and predict in this
process). Needs scikit-learn and palmerpenguins (not babynn's dependencies).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

PY = sys.executable


def datasets() -> dict[str, tuple[pd.DataFrame, str, list[str]]]:
    """name -> (frame with the label column last, the target, babynn's options for its columns)."""
    import palmerpenguins
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine

    out = {}
    loaders = (
        ("iris", load_iris),
        ("wine", load_wine),
        ("breast_cancer", load_breast_cancer),
        ("digits", load_digits),
    )
    for name, loader in loaders:
        d = loader(as_frame=True)
        frame = d.frame.drop(columns="target")
        names = getattr(d, "target_names", None)
        labels = d.target.to_numpy()
        frame["label"] = [str(names[k]) for k in labels]
        # digits' classes are the digits: numbers, so the user names the loss
        out[name] = (frame, "label", ["--loss", "cross-entropy"] if name == "digits" else [])
    penguins = palmerpenguins.load_penguins()
    columns = [c for c in penguins.columns if c != "species"] + ["species"]
    out["penguins"] = (penguins[columns], "species", ["--impute"])
    return out


def split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(0.8 * len(frame))
    return frame.iloc[np.sort(order[:cut])], frame.iloc[np.sort(order[cut:])]


def babynn(train: Path, test: Path, options: list[str]) -> tuple[float, float, float]:
    exe = str(Path(PY).parent / "babynn")
    model = train.parent / "model.json"
    start = time.perf_counter()
    fit = [exe, "fit", str(train), *options, "-o", str(model), "-q"]
    done = subprocess.run(fit, capture_output=True, text=True)
    if done.returncode not in (0, 4):
        raise SystemExit(f"{' '.join(fit)}: {done.stderr}")
    predict = [exe, "predict", str(model), str(test), "--json"]
    doc = json.loads(subprocess.run(predict, capture_output=True, text=True, check=True).stdout)
    return doc["accuracy"], doc["log_loss"], time.perf_counter() - start


def sklearn(
    train: pd.DataFrame, test: pd.DataFrame, target: str, network: bool
) -> tuple[float, float, float]:
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    start = time.perf_counter()
    train, test = train[train[target].notna()], test[test[target].notna()]
    X = train.drop(columns=target)
    text = [c for c in X.columns if X[c].dtype.kind not in "iufb"]
    numbers = [c for c in X.columns if c not in text]
    parts = [(make_pipeline(SimpleImputer(), StandardScaler()), numbers)]
    if text:
        fill = SimpleImputer(strategy="constant", fill_value="(missing)")
        parts.append((make_pipeline(fill, OneHotEncoder(handle_unknown="ignore")), text))
    learner = (
        MLPClassifier(hidden_layer_sizes=(32,), max_iter=1000, random_state=0)
        if network
        else LogisticRegression()
    )
    model = make_pipeline(make_column_transformer(*parts), learner)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, train[target])
    P = model.predict_proba(test[X.columns])
    accuracy = accuracy_score(test[target], model.classes_[P.argmax(axis=1)])
    loss = log_loss(test[target], P, labels=model.classes_)
    return float(accuracy), float(loss), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=None)
    parser.add_argument("--seeds", type=int, default=1, help="splits to average over")
    args = parser.parse_args()
    sets = datasets()
    if args.sets:
        sets = {k: sets[k] for k in args.sets.split(",")}
    print(f"{'set':14} {'model':7} {'rows':>5}  {'babynn acc':>10} {'peer acc':>8} {'Δ':>7}  "
          f"{'babynn ll':>9} {'peer ll':>8}  {'babynn s':>8} {'peer s':>7}")  # fmt: skip
    worst = 0.0
    for name, (frame, target, options) in sets.items():
        for label, extra, network in (("linear", [], False), ("mlp 32", ["--hidden", "32"], True)):
            got = []
            for seed in range(args.seeds):
                train, test = split(frame, seed)
                with tempfile.TemporaryDirectory() as tmp:
                    folder = Path(tmp)
                    train.to_csv(folder / "train.csv", index=False)
                    test.to_csv(folder / "test.csv", index=False)
                    ours = babynn(folder / "train.csv", folder / "test.csv", [*options, *extra])
                theirs = sklearn(train, test, target, network)
                got.append((*ours, *theirs))
            acc, ll, s, p_acc, p_ll, p_s = np.mean(got, axis=0)
            worst = min(worst, acc - p_acc)
            row = (
                f"{name:14} {label:7} {len(frame):5}  {acc:10.4f} {p_acc:8.4f} {acc - p_acc:+7.4f}"
            )
            print(f"{row}  {ll:9.4f} {p_ll:8.4f}  {s:8.2f} {p_s:7.2f}")
    print(f"worst accuracy margin {worst:+.4f} (target ≥ −0.03)")


if __name__ == "__main__":
    main()
