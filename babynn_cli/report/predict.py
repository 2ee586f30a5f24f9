"""predict's report: the predictions as columns (DATA's id columns first), their score on the rows
that have targets, the notes on rows left empty and categories never seen, and --json's
document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from babynn_cli.core.vocabulary import mse, r2_per_output
from babynn_cli.report.console import Reporter
from babynn_cli.report.words import metrics_sentence
from babynn_cli.text import listing

if TYPE_CHECKING:
    from babynn_cli.data.read import ToPredict


def scores(Y: np.ndarray | None, Y_hat: np.ndarray) -> dict[str, Any]:
    """MSE and R² over the rows that have both targets and a prediction, and how many those are;
    nothing when DATA has no usable targets or no such row."""
    if Y is None:
        return {}
    rows = np.isfinite(Y).all(axis=1) & np.isfinite(Y_hat).all(axis=1)
    scored = int(rows.sum())
    if scored == 0:
        return {}
    Y, Y_hat = (Y, Y_hat) if scored == len(Y) else (Y[rows], Y_hat[rows])
    return {"mse": mse(Y, Y_hat), "r2": r2_per_output(Y, Y_hat).tolist(), "rows_scored": scored}


def columns(targets: Sequence[str], Y_hat: np.ndarray, ids: Any) -> dict[str, Any]:
    """The CSV's columns: DATA's id columns as DATA has them, then one per target (empty where the
    row could not be predicted)."""
    out: dict[str, Any] = {}
    if ids is not None:
        for name in ids.columns:
            out[name] = ids[name].to_numpy()
    for j, t in enumerate(targets):
        out[t] = Y_hat[:, j]
    return out


def as_json(
    targets: Sequence[str], Y_hat: np.ndarray, scored: dict[str, Any], read: ToPredict
) -> dict[str, Any]:
    """What `predict --json` prints: the targets, the ids DATA has, the predictions (null where a
    row could not be predicted), the counts, and the score when there is one."""
    doc: dict[str, Any] = {"targets": list(targets)}
    if read.ids is not None:
        doc["ids"] = {
            name: [None if v is None or v != v else str(v) for v in read.ids[name].tolist()]
            for name in read.ids.columns
        }
    doc["predictions"] = Y_hat.tolist()
    doc["rows"] = len(Y_hat)
    doc["rows_not_predicted"] = read.blank
    if read.unseen:
        doc["unseen_categories"] = dict(read.unseen)
    return {**doc, **scored}


def show(
    report: Reporter,
    scored: dict[str, Any],
    targets: Sequence[str],
    read: ToPredict,
    json_out: bool,
) -> None:
    """On stderr (stdout holds the predictions): rows left empty, categories never seen, and the
    score, on how many rows."""
    rows = len(read.X)
    if read.blank:
        report.status(
            f"{read.blank:,} of {rows:,} rows not predicted (a missing feature cell, and the model "
            "does not impute: fit with --impute to fill them); their prediction cells are empty"
        )
    if read.unseen:
        counts = listing([f"{col} {n:,}" for col, n in read.unseen.items()])
        report.status(
            f"cells holding a category the model never saw, predicted as none of the known ones: "
            f"{counts}"
        )
    if read.unusable:
        report.status(f"no MSE or R²: {read.unusable} (the predictions do not need the targets)")
    elif read.Y is not None and not scored:
        report.status("no MSE or R²: no row has both its targets and a prediction")
    if scored and not json_out:
        sentence = metrics_sentence(scored["mse"], scored["r2"], targets)
        if scored["rows_scored"] < rows:
            sentence += (
                f"  on the {scored['rows_scored']:,} of {rows:,} rows that have their targets "
                "and a prediction"
            )
        report.status(sentence)
