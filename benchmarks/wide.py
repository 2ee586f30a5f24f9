"""Fewer rows than features (issue 25): memory and time follow the rows, not m².

    python benchmarks/wide.py [--rows 5] [--features 2500,5000,10000,20000]

For each width, writes a CSV of `--rows` rows (seeded normal features, a target of three of them
plus noise), runs `babynn fit DATA -q --json -o model.json` as a user would, a whole process under
/usr/bin/time, and reports its peak resident memory and wall time beside `pd.read_csv` of the same
file in a process of its own (the floor of reading), and the m × m matrix the moments would have
been (8m² bytes). The learned weights are checked against np.linalg.lstsq's fit of least norm of
the centred rows (the gap asked is 1e-14 of the variance).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from predict_memory import peak_mb

BIN = Path(sys.executable).parent / "babynn"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5)
    parser.add_argument("--features", default="2500,5000,10000,20000")
    args = parser.parse_args()
    print("| features | babynn fit | peak memory | read_csv alone | its memory | m × m moments |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for m in (int(w) for w in args.features.split(",")):
            rng = np.random.default_rng(0)
            X = rng.normal(size=(args.rows, m))
            y = X[:, :3].sum(axis=1) + 0.1 * rng.normal(size=args.rows)
            data, model = Path(tmp) / f"wide{m}.csv", Path(tmp) / "model.json"
            frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(m)])
            frame["y"] = y
            frame.to_csv(data, index=False)
            fit = [str(BIN), "fit", str(data), "-q", "--gap-tol", "1e-14", "-o", str(model)]
            mb, seconds, _ = peak_mb(fit)
            read = [sys.executable, "-c", f"import pandas; pandas.read_csv({str(data)!r})"]
            read_mb, read_seconds, _ = peak_mb(read)
            W = np.array(json.loads(model.read_text())["model"]["weights"])[:, 0]
            reference = np.linalg.lstsq(X - X.mean(axis=0), y - y.mean(), rcond=None)[0]
            error = np.linalg.norm(W - reference) / np.linalg.norm(reference)
            assert error < 1e-6, f"{m} features: weights {error:.2e} from lstsq's"
            print(
                f"| {m:,} | {seconds:.2f} s | {mb:.0f} MB | {read_seconds:.2f} s | "
                f"{read_mb:.0f} MB | {8 * m * m / 2**20:,.0f} MB |"
            )


if __name__ == "__main__":
    main()
