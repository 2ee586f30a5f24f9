"""Data past memory: wall time and peak RSS of `babynn fit` in memory, with --stream, with
--scheduler local (two worker processes) and with an external `dask scheduler` and two `dask worker`
processes, beside pandas' chunked reader and polars' batched reader (when polars is installed)
computing the same moments (issue 13's scaling table).

    python benchmarks/stream.py [--rows 1000000 10000000 25000000] [--features 10]

Generates each seeded CSV once into benchmarks/data/ (10⁷ × 10 is about 1.2 GB and takes minutes),
then runs each measure once as a whole process under GNU time; peak RSS is the largest single
process GNU time saw (for --scheduler local that includes the workers, which are babynn's children;
an external cluster's workers are not counted). Prints one table; the targets: --stream peak RSS
under 400 MB at every size, its wall time within 1.2× of pandas' chunked pass, the distributed
weights equal to the streamed ones.
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
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
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

POLARS_BATCHED = textwrap.dedent(
    """
    import sys, numpy as np, polars as pl
    n, shift = 0, None
    # polars 2: read_csv_batched was removed; a streaming scan's batches replace it
    for b in pl.scan_csv(sys.argv[1]).collect_batches(chunk_size=1 << 16):
        Z = b.to_numpy().astype(float)
        shift = Z[0] if shift is None else shift
        Z = Z - shift
        m = Z.mean(axis=0); C = Z - m; M = C.T @ C
        if n == 0:
            n, mean, S = len(Z), m, M
        else:
            k = n + len(Z); d = m - mean
            S = S + M + np.outer(d, d) * n * len(Z) / k; mean = mean + d * len(Z) / k; n = k
    print(n)
    """
)


@contextmanager
def external_cluster(workers: int = 2) -> Iterator[str]:
    """A `dask scheduler` and `workers` single-threaded `dask worker` processes; their address."""
    from distributed import Client

    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "scheduler.json"
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": folder}
        dask = [PY, "-m", "dask"]
        procs = [
            subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                              "--no-dashboard", "--scheduler-file", str(file)], **quiet)
        ]  # fmt: skip
        try:
            while not file.exists():
                time.sleep(0.2)
            for _ in range(workers):
                procs.append(
                    subprocess.Popen([*dask, "worker", "--scheduler-file", str(file),
                                      "--nthreads", "1", "--no-dashboard"], **quiet)
                )  # fmt: skip
            with Client(scheduler_file=str(file)) as c:
                c.wait_for_workers(workers, timeout=120)
                yield c.scheduler.address
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait()


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
    with external_cluster() as address:
        for rows in a.rows:
            path = str(linear_csv(rows, a.features))
            size = os.path.getsize(path) / 1e6
            fit = [BABYNN, "fit", path, "-q", "--json", "-o", "m.json"]
            runs = {
                "fit in memory": fit,
                "fit --stream": [*fit, "--stream"],
                "fit --scheduler local": [*fit, "--scheduler", "local"],
                "fit --scheduler (external)": [*fit, "--scheduler", address],
                "pandas chunked moments": [PY, "-c", PANDAS_CHUNKED, path],
            }
            if find_spec("polars") is not None:
                runs["polars batched moments"] = [PY, "-c", POLARS_BATCHED, path]
            weights, seconds = {}, {}
            for name, args in runs.items():
                took, peak, out = measure(args)
                if name.startswith("fit"):
                    weights[name] = json.loads(out)["weights"]
                seconds[name] = took
                results.append({"rows": rows, "measure": name, "seconds": took, "peak_rss": peak})
                print(f"{rows:>12,}  {name:<28} {took:>8.1f} {peak / 1e6:>12.0f}")
            ratio = seconds["fit --stream"] / seconds["pandas chunked moments"]
            differ = {
                name: largest_difference(weights["fit --stream"], w)
                for name, w in weights.items()
                if name != "fit --stream"
            }
            print(f"{'':>12}  ({size:,.0f} MB CSV; --stream / pandas chunked {ratio:.2f}; "
                  "weights' largest relative difference from --stream: "
                  + ", ".join(f"{k.removeprefix('fit ')} {v:.1e}" for k, v in differ.items())
                  + ")")  # fmt: skip


def largest_difference(a: list[list[float]], b: list[list[float]]) -> float:
    return max(
        abs(u - v) / abs(u)
        for row_a, row_b in zip(a, b, strict=True)
        for u, v in zip(row_a, row_b, strict=True)
    )


if __name__ == "__main__":
    main()
