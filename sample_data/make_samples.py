"""Regenerate the synthetic sample files: python sample_data/make_samples.py (numpy only).

diabetes.csv is not made here: see README.md in this folder.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def write(name: str, header: list[str], table: np.ndarray) -> None:
    lines = [",".join(header)] + [",".join(f"{v:.6f}" for v in row) for row in table]
    (HERE / name).write_text("\n".join(lines) + "\n")


def notes_example(rng: np.random.Generator) -> None:
    """Three inputs, one output: y = 2·x0 - 3·x1 + 0.5·x2 + 4 + noise(sd 0.5)."""
    X = rng.normal(0.0, 1.0, size=(200, 3)) * [1.0, 2.0, 5.0] + [0.0, 1.0, -2.0]
    y = X @ [2.0, -3.0, 0.5] + 4.0 + rng.normal(0.0, 0.5, size=200)
    write("notes_example.csv", ["x0", "x1", "x2", "y"], np.column_stack([X, y]))


def two_outputs(rng: np.random.Generator) -> None:
    """Four inputs, two outputs of one affine map plus noise (sd 0.1 and 0.2)."""
    X = rng.uniform(-1.0, 1.0, size=(300, 4)) * [1.0, 10.0, 0.1, 3.0]
    W = np.array([[1.0, -2.0], [0.3, 0.1], [20.0, 5.0], [-1.0, 0.0]])
    Y = X @ W + [1.0, -1.0] + rng.normal(0.0, 1.0, size=(300, 2)) * [0.1, 0.2]
    write("two_outputs.csv", ["a", "b", "c", "d", "y1", "y2"], np.column_stack([X, Y]))


def nonlinear(rng: np.random.Generator) -> None:
    """Two inputs, one output no line can follow: y = sin(x0) + x1² + noise(sd 0.1)."""
    X = rng.uniform(-3.0, 3.0, size=(1000, 2))
    y = np.sin(X[:, 0]) + X[:, 1] ** 2 + rng.normal(0.0, 0.1, size=1000)
    write("nonlinear.csv", ["x0", "x1", "y"], np.column_stack([X, y]))


if __name__ == "__main__":
    rng = np.random.default_rng(2026)
    notes_example(rng)
    two_outputs(rng)
    nonlinear(rng)
