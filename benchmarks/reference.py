"""The closed-form reference's correct digits on certified problems, and its time at scale.

    python benchmarks/reference.py [--rows 1000000] [--features 100]

Correct digits are −log₁₀ of the largest relative error over the intercept and the weights. The
problems: NIST's Statistical Reference Datasets for linear least squares (public domain, data and
certified values below; Filip is the hardest: degree 10, nearly singular; Pontius degree 2 with
columns up to 9·10¹²; Wampler1 an exact degree-5 polynomial), and the exactly known designs of
tests/test_reference.py. Beside babynn: numpy's lstsq (SVD) on the raw design and, when installed,
scikit-learn's LinearRegression. Then the time of the reference (the least-squares fit and L*) on
the seeded --rows × --features file of benchmarks/datasets.py, in memory.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd
from datasets import linear_csv

from babynn_cli.core.moments import least_squares

# y x, 82 rows
FILIP = """
    0.8116 -6.860120914  0.9072 -4.324130045  0.9052 -4.358625055  0.9039 -4.358426747
    0.8053 -6.955852379  0.8377 -6.661145254  0.8667 -6.355462942  0.8809 -6.118102026
    0.7975 -7.115148017  0.8162 -6.815308569  0.8515 -6.519993057  0.8766 -6.204119983
    0.8885 -5.853871964  0.8859 -6.109523091  0.8959 -5.79832982  0.8913 -5.482672118
    0.8959 -5.171791386  0.8971 -4.851705903  0.9021 -4.517126416  0.909 -4.143573228
    0.9139 -3.709075441  0.9199 -3.499489089  0.8692 -6.300769497  0.8872 -5.953504836
    0.89 -5.642065153  0.891 -5.031376979  0.8977 -4.680685696  0.9035 -4.329846955
    0.9078 -3.928486195  0.7675 -8.56735134  0.7705 -8.363211311  0.7713 -8.107682739
    0.7736 -7.823908741  0.7775 -7.522878745  0.7841 -7.218819279  0.7971 -6.920818754
    0.8329 -6.628932138  0.8641 -6.323946875  0.8804 -5.991399828  0.7668 -8.781464495
    0.7633 -8.663140179  0.7678 -8.473531488  0.7697 -8.247337057  0.77 -7.971428747
    0.7749 -7.676129393  0.7796 -7.352812702  0.7897 -7.072065318  0.8131 -6.774174009
    0.8498 -6.478861916  0.8741 -6.159517513  0.8061 -6.835647144  0.846 -6.53165267
    0.8751 -6.224098421  0.8856 -5.910094889  0.8919 -5.598599459  0.8934 -5.290645224
    0.894 -4.974284616  0.8957 -4.64454848  0.9047 -4.290560426  0.9129 -3.885055584
    0.9209 -3.408378962  0.9219 -3.13200249  0.7739 -8.726767166  0.7681 -8.66695597
    0.7665 -8.511026475  0.7703 -8.165388579  0.7702 -7.886056648  0.7761 -7.588043762
    0.7809 -7.283412422  0.7961 -6.995678626  0.8253 -6.691862621  0.8602 -6.392544977
    0.8809 -6.067374056  0.8301 -6.684029655  0.8664 -6.378719832  0.8834 -6.065855188
    0.8898 -5.752272167  0.8964 -5.132414673  0.8963 -4.811352704  0.9074 -4.098269308
    0.9119 -3.66174277  0.9228 -3.2644011
"""
FILIP_CERTIFIED = [
    -1467.48961422980,
    -2772.17959193342,
    -2316.37108160893,
    -1127.97394098372,
    -354.478233703349,
    -75.1242017393757,
    -10.8753180355343,
    -1.06221498588947,
    -0.670191154593408e-01,
    -0.246781078275479e-02,
    -0.402962525080404e-04,
]
# y x, 40 rows
PONTIUS = """
    .11019 150000  .21956 300000  .32949 450000  .43899 600000
    .54803 750000  .65694 900000  .76562 1050000  .87487 1200000
    .98292 1350000  1.09146 1500000  1.20001 1650000  1.30822 1800000
    1.41599 1950000  1.52399 2100000  1.63194 2250000  1.73947 2400000
    1.84646 2550000  1.95392 2700000  2.06128 2850000  2.16844 3000000
    .11052 150000  .22018 300000  .32939 450000  .43886 600000
    .54798 750000  .65739 900000  .76596 1050000  .87474 1200000
    .98300 1350000  1.09150 1500000  1.20004 1650000  1.30818 1800000
    1.41613 1950000  1.52408 2100000  1.63159 2250000  1.73965 2400000
    1.84696 2550000  1.95445 2700000  2.06177 2850000  2.16829 3000000
"""
PONTIUS_CERTIFIED = [0.673565789473684e-03, 0.732059160401003e-06, -0.316081871345029e-14]


def powers(x: np.ndarray, degree: int) -> np.ndarray:
    return np.column_stack([x**k for k in range(1, degree + 1)])


def problems():
    """(name, X, y, coefficients: intercept first)."""
    y, x = np.array(FILIP.split(), float).reshape(-1, 2).T
    yield "NIST Filip (degree 10)", powers(x, 10), y, np.array(FILIP_CERTIFIED)
    y, x = np.array(PONTIUS.split(), float).reshape(-1, 2).T
    yield "NIST Pontius (degree 2)", powers(x, 2), y, np.array(PONTIUS_CERTIFIED)
    X = powers(np.arange(21.0), 5)
    yield "NIST Wampler1 (degree 5)", X, 1 + X.sum(axis=1), np.ones(6)
    ten = np.array([3, -2, 1, 4, -1, 2, -3, 1, 2, -1, 1.0])
    for label, x in (("-10..10", np.arange(-10.0, 11.0)), ("0..20", np.arange(21.0))):
        X = powers(x, 10)
        yield f"exact degree 10 on {label}", X, ten[0] + X @ ten[1:], ten
    X = 1e8 + np.random.default_rng(0).integers(-1000, 1000, size=(500, 3)).astype(float)
    c = np.array([5.0, 2, -1, 3])
    yield "offset 1e8 + integer noise", X, c[0] + X @ c[1:], c


def digits(found: np.ndarray, true: np.ndarray) -> float:
    error = float(np.max(np.abs(found - true) / np.abs(true)))
    return -math.log10(error) if error > 0 else 17.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=100)
    a = parser.parse_args()
    try:
        from sklearn.linear_model import LinearRegression
    except ImportError:
        LinearRegression = None
    print(f"{'correct digits':32} {'babynn':>7} {'lstsq':>7} {'sklearn':>8}")
    for name, X, y, true in problems():
        fit = least_squares(X, y[:, None])
        ours = digits(np.concatenate([fit.w0, fit.W[:, 0]]), true)
        design = np.column_stack([np.ones(len(X)), X])
        svd = digits(np.linalg.lstsq(design, y, rcond=None)[0], true)
        line = f"{name:32} {ours:7.1f} {svd:7.1f}"
        if LinearRegression is not None:
            model = LinearRegression().fit(X, y)
            line += f" {digits(np.concatenate([[model.intercept_], model.coef_]), true):8.1f}"
        print(line)
    frame = pd.read_csv(linear_csv(a.rows, a.features))
    X, Y = frame.iloc[:, :-1].to_numpy(), frame.iloc[:, -1:].to_numpy()
    start = time.perf_counter()
    least_squares(X, Y)
    print(f"reference on {a.rows} × {a.features}: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
