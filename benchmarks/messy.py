"""CSVs as people have them, with no pandas step, against a scikit-learn pipeline (issue 23).

    python benchmarks/messy.py [--sets penguins,grunfeld]

Seven public data sets are written as they come (text columns, ids, an unnamed index, `NA`
cells, ISO dates, codes), split 75/25 (seeded). babynn is run as a user runs it, a whole process
on the training file with only the options that say what the columns are (`--id`, `--exclude`,
`--categorical`, `--impute`, `--dropna`), and `babynn predict --json` scores the test file (on its
rows that have a target). Beside it, on the same split: scikit-learn's ColumnTransformer pipeline
(SimpleImputer mean for numbers and dates, a constant level for categories, OneHotEncoder with
handle_unknown="ignore", dates as fractional years) and LinearRegression. Target: |ΔR²| ≤ 0.01.
Needs scikit-learn, statsmodels and palmerpenguins (not babynn's dependencies).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

PY = sys.executable
SEED = 0


@dataclass
class Case:
    """A data set as a user has it: the file's text, its target, and what its columns are."""

    csv: str
    target: str
    ids: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)  # numeric codes that are categories
    dates: list[str] = field(default_factory=list)

    def options(self, frame: pd.DataFrame) -> list[str]:
        """babynn's options: what the columns are, and what to do with missing cells."""
        out = ["-t", self.target]
        for flag, names in (("--id", self.ids), ("--exclude", self.exclude),
                            ("--categorical", self.codes)):  # fmt: skip
            for name in names:
                out += [flag, name]
        features = frame.drop(columns=[self.target, *self.ids, *self.exclude])
        if features.isna().any().any():
            out.append("--impute")
        if frame[self.target].isna().any():
            out.append("--dropna")
        return out


def cases() -> dict[str, Case]:
    import palmerpenguins
    from sklearn.datasets import load_iris
    from statsmodels import datasets as sm

    out = {}
    out["penguins"] = Case(palmerpenguins.load_penguins().to_csv(index=False), "body_mass_g")
    raw = palmerpenguins.load_penguins_raw()
    out["penguins_raw"] = Case(
        raw.to_csv(index=False), "Body Mass (g)", ids=["Individual ID", "Sample Number"],
        exclude=["Comments"], dates=["Date Egg"],
    )  # fmt: skip
    iris = load_iris(as_frame=True)
    frame = iris.frame.drop(columns="target")
    frame.insert(0, "Id", range(1, len(frame) + 1))
    frame["species"] = iris.target_names[iris.target]
    out["iris_with_id"] = Case(frame.to_csv(index=False), "petal width (cm)", ids=["Id"])
    out["statecrime"] = Case(sm.statecrime.load_pandas().data.to_csv(), "murder", ids=["state"])
    grunfeld = sm.grunfeld.load_pandas().data
    out["grunfeld"] = Case(grunfeld.to_csv(index=False), "invest")
    co2 = sm.co2.load_pandas().data
    out["co2"] = Case(co2.to_csv(index_label="date"), "co2", dates=["date"])
    fair = sm.fair.load_pandas().data
    out["fair"] = Case(fair.to_csv(index=False), "affairs", codes=["occupation", "occupation_husb"])
    return out


def fractional_years(values: pd.DataFrame) -> np.ndarray:
    """ISO dates as years and the part of the year gone by, column by column."""
    out = []
    for column in values.columns:
        when = pd.to_datetime(values[column], utc=True, format="ISO8601")
        days = np.where(when.dt.is_leap_year, 366.0, 365.0)
        seconds = when.dt.hour * 3600 + when.dt.minute * 60 + when.dt.second
        out.append(when.dt.year + (when.dt.day_of_year - 1 + seconds / 86400.0) / days)
    return np.column_stack(out)


def sklearn_r2(case: Case, train: pd.DataFrame, test: pd.DataFrame) -> tuple[float, float]:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    start = time.perf_counter()
    train = train[train[case.target].notna()]
    test = test[test[case.target].notna()]
    X = train.drop(columns=[case.target, *case.ids, *case.exclude])
    text = [c for c in X.columns if X[c].dtype.kind not in "iufb" and c not in case.dates]
    categorical = text + case.codes
    numeric = [c for c in X.columns if c not in categorical and c not in case.dates]
    parts = [("num", SimpleImputer(strategy="mean"), numeric)]
    if case.dates:
        dates = make_pipeline(FunctionTransformer(fractional_years), SimpleImputer())
        parts.append(("date", dates, case.dates))
    if categorical:
        one_hot = Pipeline([
            ("fill", SimpleImputer(strategy="constant", fill_value="(missing)")),
            ("hot", OneHotEncoder(handle_unknown="ignore")),
        ])  # fmt: skip
        parts.append(("cat", one_hot, categorical))
    to_text = FunctionTransformer(lambda f: f.astype({c: str for c in case.codes}))
    model = make_pipeline(to_text, ColumnTransformer(parts), LinearRegression())
    model.fit(X, train[case.target])
    r2 = r2_score(test[case.target], model.predict(test[X.columns]))
    return float(r2), time.perf_counter() - start


def babynn_r2(case: Case, train: Path, test: Path, frame: pd.DataFrame) -> tuple[float, float]:
    exe = str(Path(PY).parent / "babynn")
    model = train.parent / "model.json"
    start = time.perf_counter()
    fit = [exe, "fit", str(train), *case.options(frame), "-o", str(model), "-q"]
    done = subprocess.run(fit, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(fit)}: {done.stderr}")
    predict = [exe, "predict", str(model), str(test), "--json"]
    scored = subprocess.run(predict, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    return float(json.loads(scored.stdout)["r2"][0]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=None, help="comma-separated names (default: all)")
    args = parser.parse_args()
    chosen = cases()
    if args.sets:
        chosen = {k: chosen[k] for k in args.sets.split(",")}
    print(f"{'data set':14} {'rows':>5}  {'babynn R²':>10} {'sklearn R²':>10} {'Δ':>8}  "
          f"{'babynn s':>8} {'sklearn s':>9}  options")  # fmt: skip
    worst = 0.0
    for name, case in chosen.items():
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "all.csv").write_text(case.csv)
            # the data as the file holds it: ids and codes as written, no cell taken for NA
            frame = pd.read_csv(folder / "all.csv", keep_default_na=True)
            order = np.random.default_rng(SEED).permutation(len(frame))
            cut = int(0.75 * len(frame))
            lines = case.csv.splitlines(keepends=True)
            header, body = lines[0], lines[1:]
            if len(body) != len(frame):
                raise SystemExit(f"{name}: a quoted line break; split by rows another way")
            train, test = folder / "train.csv", folder / "test.csv"
            train.write_text(header + "".join(body[i] for i in sorted(order[:cut])))
            test.write_text(header + "".join(body[i] for i in sorted(order[cut:])))
            ours, our_s = babynn_r2(case, train, test, frame)
            theirs, their_s = sklearn_r2(case, frame.iloc[sorted(order[:cut])],
                                         frame.iloc[sorted(order[cut:])])  # fmt: skip
        delta = ours - theirs
        worst = max(worst, abs(delta))
        flags = " ".join(case.options(frame)[2:])
        print(f"{name:14} {len(frame):5}  {ours:10.4f} {theirs:10.4f} {delta:+8.4f}  "
              f"{our_s:8.2f} {their_s:9.2f}  {flags}")  # fmt: skip
    print(f"largest |Δ R²| = {worst:.2g} (target ≤ 0.01)")


if __name__ == "__main__":
    main()
