"""Seeded data sets for the benchmarks, written once to benchmarks/data/ (git-ignored)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"


def linear_csv(rows: int, features: int, seed: int = 0) -> Path:
    """rows × features inputs on different scales and one target: a linear rule plus noise."""
    path = DATA / f"linear_{rows}x{features}.csv"
    if path.exists():
        return path
    import pandas as pd

    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.5, 20.0, size=features)
    X = rng.normal(size=(rows, features)) * scales + rng.normal(size=features) * 5
    y = X @ rng.normal(size=features) + 3.0 + rng.normal(size=rows)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(features)])
    frame["y"] = y
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False, float_format="%.8g")
    tmp.replace(path)
    return path
