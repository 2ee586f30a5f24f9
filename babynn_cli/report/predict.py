"""predict's report: the score of the predictions when DATA has the targets, and --json's
document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from babynn_cli.report.console import Reporter
from babynn_cli.report.words import metrics_sentence


def show(report: Reporter, metrics: dict[str, Any], targets: Sequence[str]) -> None:
    """The MSE and R² on stderr (stdout holds the predictions)."""
    if metrics:
        report.status(metrics_sentence(metrics["mse"], metrics["r2"], targets))


def as_json(targets: Sequence[str], Y_hat: np.ndarray, metrics: dict[str, Any]) -> dict[str, Any]:
    """What `predict --json` prints: the targets, the predictions, and the score when there is
    one."""
    return {"targets": list(targets), "predictions": Y_hat.tolist(), **metrics}
