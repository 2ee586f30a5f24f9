"""predict in bounded memory (issue 25): 10⁷ rows in ten parts, a glob, peak memory measured.

    python benchmarks/predict_memory.py [--rows 10000000] [--parts 10]

Writes `--parts` CSV files of 10 features and a target (benchmarks/data/predict_parts/, made
once), fits the affine model on the first 10⁵ rows, then runs, as a user would, a whole process
`babynn predict model.json 'parts/*.csv' -o predictions.csv` under /usr/bin/time and reports
its peak resident memory (target: under 400 MB) and time, beside pandas reading the same files
(`pd.read_csv` of each part, the floor of any in-memory reader). The predictions are checked
against the model's weights applied by numpy, part by part (to 1e-12).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

BIN = Path(sys.executable).parent / "babynn"
DATA = Path(__file__).parent / "data" / "predict_parts"


def make_parts(rows: int, parts: int) -> list[Path]:
    DATA.mkdir(parents=True, exist_ok=True)
    files = [DATA / f"part{k:02d}.csv" for k in range(parts)]
    if all(f.exists() for f in files) and (DATA / "rows.txt").read_text() == str(rows):
        return files
    rng = np.random.default_rng(0)
    w = rng.normal(size=10)
    for f in files:
        X = rng.normal(size=(rows // parts, 10))
        frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(10)])
        frame["y"] = X @ w + 0.1 * rng.normal(size=len(X))
        frame.to_csv(f, index=False)
    (DATA / "rows.txt").write_text(str(rows))
    return files


def peak_mb(command: list[str]) -> tuple[float, float, str]:
    """Peak resident memory (MB) and wall time (s) of a whole process, and its stderr."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
    return kb / 1024, seconds, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--parts", type=int, default=10)
    args = parser.parse_args()
    files = make_parts(args.rows, args.parts)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pd.read_csv(files[0], nrows=100_000).to_csv(folder / "train.csv", index=False)
        subprocess.run(
            [str(BIN), "fit", str(folder / "train.csv"), "-q", "-o", str(folder / "model.json")],
            check=True,
        )
        out = folder / "predictions.csv"
        glob = str(DATA / "part*.csv")
        mb, seconds, _ = peak_mb(
            [str(BIN), "predict", str(folder / "model.json"), glob, "-o", str(out)]
        )
        pandas_mb, pandas_s, _ = peak_mb(
            [
                sys.executable,
                "-c",
                f"import pandas as pd, glob; [pd.read_csv(f) for f in sorted(glob.glob({glob!r}))]",
            ]
        )
        model = json.loads((folder / "model.json").read_text())["model"]
        W, b = np.asarray(model["weights"]), np.asarray(model["bias"])
        worst, rows = 0.0, 0
        predictions = pd.read_csv(out, chunksize=args.rows // args.parts)
        for f, got in zip(files, predictions, strict=True):
            X = pd.read_csv(f).iloc[:, :10].to_numpy()
            expected = X @ W[:, 0] + b[0]
            worst = max(worst, float(np.max(np.abs(got["y"].to_numpy() - expected))))
            rows += len(got)
    size = sum(f.stat().st_size for f in files) / 1e6
    print(f"rows {rows:,} in {args.parts} parts ({size:,.0f} MB of CSV)")
    print(f"babynn predict (streamed): peak {mb:,.0f} MB, {seconds:.1f} s  (target: < 400 MB)")
    print(f"pandas read_csv of each part, for scale: peak {pandas_mb:,.0f} MB, {pandas_s:.1f} s")
    print(f"largest |prediction − numpy's Xw + b|: {worst:.3g}")


if __name__ == "__main__":
    main()
