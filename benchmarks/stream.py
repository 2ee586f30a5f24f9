"""Data past memory: wall time and peak RSS of `babynn fit` in memory and with --stream, beside
pandas' chunked reader computing the same moments (issue 13's scaling table).

    python benchmarks/stream.py [--rows 1000000 10000000 25000000] [--features 10]

Generates each seeded CSV once into benchmarks/data/ (10⁷ × 10 is about 1.2 GB and takes minutes),
then runs each measure once as a whole process under GNU time. Prints one table; the targets:
--stream peak RSS under 400 MB at every size, its wall time within 1.2× of pandas' chunked pass.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from datasets import linear_csv

PY = sys.executable
BABYNN = str(Path(PY).parent / "babynn")

PANDAS_CHUNKED = textwrap.dedent(
    """
    import sys, numpy as np, pandas as pd
    n, total, shift = 0, None, None
    for chunk in pd.read_csv(sys.argv[1], chunksize=1 << 16):
        Z = chunk.to_numpy(dtype=float)
        shift = Z[0] if shift is None else shift
        Z = Z - shift
        m = Z.mean(axis=0); C = Z - m; M = C.T @ C
        if total is None:
            n, mean, S = len(Z), m, M
        else:
            k = n + len(Z); d = m - mean
            S = S + M + np.outer(d, d) * n * len(Z) / k; mean = mean + d * len(Z) / k; n = k
        total = 1
    print(n)
    """
)


def measure(args: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes, stdout of one run under GNU time."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *args], cwd=folder, capture_output=True, text=True
        )
        took = time.perf_counter() - start
        if done.returncode not in (0,):
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr}")
        return took, int(done.stderr.strip().splitlines()[-1]) * 1024, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--features", type=int, default=10)
    a = parser.parse_args()
    print(f"{'rows':>12}  {'measure':<28} {'wall s':>8} {'peak RSS MB':>12}")
    results = []
    for rows in a.rows:
        path = linear_csv(rows, a.features)
        size = os.path.getsize(path) / 1e6
        runs = {
            "fit in memory": [BABYNN, "fit", str(path), "-q", "--json", "-o", "m.json"],
            "fit --stream": [BABYNN, "fit", str(path), "-q", "--json", "--stream", "-o", "m.json"],
            "pandas chunked moments": [PY, "-c", PANDAS_CHUNKED, str(path)],
        }
        weights = {}
        for name, args in runs.items():
            took, peak, out = measure(args)
            if name.startswith("fit"):
                weights[name] = json.loads(out)["weights"]
            results.append({"rows": rows, "measure": name, "seconds": took, "peak_rss": peak})
            print(f"{rows:>12,}  {name:<28} {took:>8.1f} {peak / 1e6:>12.0f}")
        ratio = results[-2]["seconds"] / results[-1]["seconds"]
        same = max(
            abs(u - v) / abs(u)
            for a_, b_ in zip(weights["fit in memory"], weights["fit --stream"], strict=True)
            for u, v in zip(a_, b_, strict=True)
        )
        print(f"{'':>12}  ({size:,.0f} MB CSV; --stream / pandas chunked {ratio:.2f}; "
              f"weights differ by {same:.1e} relative)")  # fmt: skip


if __name__ == "__main__":
    main()
