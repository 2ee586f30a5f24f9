"""`babynn fit DATA --optimizer momentum` (and nesterov) with no other option beside plain descent:
the epochs theory predicted and the epochs taken, the gap left, on the data sets of
fit_samples.py and five regression sets bundled with statsmodels.

    python benchmarks/momentum.py

Done when (issue 26): every set within (L − L*)/L* ≤ 1e-6; where plain descent needs more than
1,000 epochs, momentum needs at most a fifth of them; momentum's epochs within 2 % of theory's.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from fit_samples import babynn, data_sets


def statsmodels_sets(folder: Path) -> Iterator[tuple[str, Path, list[str]]]:
    try:
        from statsmodels import datasets
    except ImportError:
        print("statsmodels is not installed: its data sets are skipped")
        return
    for name in ("longley", "stackloss", "engel", "copper", "macrodata"):
        frame = getattr(datasets, name).load_pandas().data.select_dtypes("number")
        if name == "macrodata":  # quarterly series: the target is real GDP
            frame = frame.drop(columns=["year", "quarter"])
            frame = frame[[c for c in frame.columns if c != "realgdp"] + ["realgdp"]]
        path = folder / f"sm_{name}.csv"
        frame.to_csv(path, index=False)
        yield f"statsmodels {name}", path, [frame.columns[-1]]


def fit(path: Path, targets: list[str], cwd: str, *options: str) -> dict:
    args = [babynn(), "fit", str(path), "--json", "-o", "m.json", *options]
    for t in targets:
        args += ["-t", t]
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if done.returncode not in (0, 3, 4):
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, path, targets in [*data_sets(folder), *statsmodels_sets(folder)]:
            row: dict[str, object] = {"data": name}
            for rule in ("gd", "momentum", "nesterov"):
                doc = fit(path, targets, tmp, "--optimizer", rule)
                row[f"{rule} predicted"] = doc["epochs_predicted"]
                row[f"{rule} taken"] = doc["epochs_run"]
                row[f"{rule} gap"] = doc["relative_gap"]
                row[f"{rule} verdict"] = doc["verdict"]
            rows.append(row)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(table.to_string(index=False))
    slow = table[table["gd taken"] > 1000]
    fifth = (slow["momentum taken"] * 5 <= slow["gd taken"]).all()
    within = ((table["momentum taken"] - table["momentum predicted"]).abs()
              <= 0.02 * table["momentum predicted"]).all()  # fmt: skip
    print(f"every set converged (momentum): {(table['momentum gap'] <= 1e-6).all()}")
    print(f"momentum ≤ a fifth of plain descent's epochs where those pass 1,000: {fifth}")
    print(f"momentum's epochs within 2 % of theory's: {within}")


if __name__ == "__main__":
    main()
