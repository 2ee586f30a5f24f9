"""predict's report: the predictions as columns (DATA's id columns first; for a classifier the
predicted label and each class's probability), their score on the rows that have targets (MSE and
R², or accuracy, log-loss and the confusion matrix), the notes on rows left empty and categories
never seen, and --json's document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.table import Table

from babynn_cli.report.console import Reporter
from babynn_cli.report.words import fmt, metrics_sentence, percent
from babynn_cli.text import listing

if TYPE_CHECKING:
    from babynn_cli.data.read import ToPredict


OTHER_LABEL = "(another label)"  # the confusion matrix's row for labels the model does not know


class RunningScores:
    """predict's scores over the rows that have targets and a prediction, gathered block by block
    (one block for an in-memory predict): MSE and R², or accuracy (a label the model does not
    know counts as wrong), log-loss (over the labels it knows: another has no probability) and
    the confusion matrix (true label → predicted → rows). Sums and counts: squared errors, the
    targets' means and spreads merged as Chan et al. merge them, right labels, log-losses."""

    def __init__(self, classes: Sequence[str] | None, n_outputs: int) -> None:
        self.classes = classes
        self.rows = 0
        n = n_outputs
        self.sse, self.mean, self.m2 = np.zeros(n), np.zeros(n), np.zeros(n)
        k = 0 if classes is None else len(classes)
        self.right = self.unknown = self.known = 0
        self.log_loss = 0.0
        self.counts = np.zeros((k + 1, max(k, 1)), dtype=np.int64)

    def add(self, Y: np.ndarray | None, codes: np.ndarray | None, Y_hat: np.ndarray) -> None:
        """One block's rows: their targets (or a classifier's codes) and predictions."""
        if self.classes is not None:
            self._add_classes(codes, Y_hat)
        elif Y is not None:
            rows = np.isfinite(Y).all(axis=1) & np.isfinite(Y_hat).all(axis=1)
            Y, Y_hat = Y[rows], Y_hat[rows]
            b = len(Y)
            if not b:
                return
            R = Y - Y_hat
            self.sse += np.einsum("ij,ij->j", R, R)
            mean_b = Y.mean(axis=0)
            m2_b = ((Y - mean_b) ** 2).sum(axis=0)
            total = self.rows + b
            delta = mean_b - self.mean
            self.m2 += m2_b + delta**2 * self.rows * b / total
            self.mean += delta * b / total
            self.rows = total

    def _add_classes(self, codes: np.ndarray | None, P: np.ndarray) -> None:
        if codes is None:
            return
        rows = np.isfinite(P).all(axis=1) & (codes != -2)
        guess = P.argmax(axis=1)
        known = rows & (codes >= 0)
        self.right += int((guess[known] == codes[known]).sum())
        picked = P[np.flatnonzero(known), codes[known]]
        self.log_loss += float(-np.log(np.maximum(picked, np.finfo(float).tiny)).sum())
        self.known += int(known.sum())
        self.unknown += int((rows & (codes == -1)).sum())
        k = len(self.counts) - 1
        np.add.at(self.counts, (np.where(codes[rows] >= 0, codes[rows], k), guess[rows]), 1)
        self.rows += int(rows.sum())

    def result(self) -> dict[str, Any]:
        """The scores of every row added: {} when none had a target and a prediction."""
        if not self.rows:
            return {}
        if self.classes is None:
            spread = np.where(self.m2 > 0, self.m2, 1.0)  # nan where the target is constant
            r2 = np.where(self.m2 > 0, 1.0 - self.sse / spread, np.nan)
            return {
                "mse": float(self.sse.sum() / self.rows),
                "r2": r2.tolist(),
                "rows_scored": self.rows,
            }
        k = len(self.classes)
        names = [*self.classes, OTHER_LABEL]
        return {
            "accuracy": self.right / self.rows,
            "log_loss": self.log_loss / self.known if self.known else None,
            "rows_scored": self.rows,
            "unknown_labels": self.unknown,
            "confusion": {
                names[t]: dict(zip(self.classes, map(int, self.counts[t]), strict=True))
                for t in range(k + 1)
                if t < k or self.counts[t].any()
            },
        }


def class_columns(target: str, classes: Sequence[str], P: np.ndarray, ids: Any) -> dict[str, Any]:
    """A classifier's CSV: DATA's id columns, the likeliest label (empty where a row could not be
    predicted), and each class's probability, `P(target=class)`."""
    out = columns([], np.empty((len(P), 0)), ids)
    predicted = np.isfinite(P).all(axis=1)
    likeliest = np.where(predicted, P.argmax(axis=1), 0)
    out[target] = [classes[k] if ok else None for k, ok in zip(likeliest, predicted, strict=True)]
    for j, c in enumerate(classes):
        out[f"P({target}={c})"] = P[:, j]
    return out


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
    targets: Sequence[str],
    Y_hat: np.ndarray,
    scored: dict[str, Any],
    read: ToPredict,
    classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """What `predict --json` prints: the targets, the ids DATA has, the predictions (null where a
    row could not be predicted; for a classifier the labels, and each class's probabilities),
    the counts, and the score when there is one."""
    doc: dict[str, Any] = {"targets": list(targets)}
    if read.ids is not None:
        doc["ids"] = {
            name: [None if v is None or v != v else str(v) for v in read.ids[name].tolist()]
            for name in read.ids.columns
        }
    if classes is not None:
        predicted = np.isfinite(Y_hat).all(axis=1)
        doc["classes"] = list(classes)
        doc["labels"] = [
            classes[int(k)] if ok else None
            for k, ok in zip(Y_hat.argmax(axis=1), predicted, strict=True)
        ]
        doc["probabilities"] = Y_hat.tolist()
    else:
        doc["predictions"] = Y_hat.tolist()
    doc["rows"] = len(Y_hat)
    doc["rows_not_predicted"] = read.blank
    if read.unseen:
        doc["unseen_categories"] = dict(read.unseen)
    if read.unknown:
        doc["unknown_label_counts"] = dict(sorted(read.unknown.items()))
    return {**doc, **scored}


def show(
    report: Reporter,
    scored: dict[str, Any],
    targets: Sequence[str],
    read: ToPredict,
    json_out: bool,
    rows: int | None = None,
) -> None:
    """On stderr (stdout holds the predictions): rows left empty, categories never seen, and the
    score, on how many rows (`rows`: all of DATA's, when `read` is a streamed run's last block)."""
    rows = len(read.X) if rows is None else rows
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
    if scored and not json_out and "accuracy" in scored:
        report.status(_class_sentence(scored, rows, read.unknown))
        report.print_err(confusion_table(scored["confusion"]))
    elif scored and not json_out:
        sentence = metrics_sentence(scored["mse"], scored["r2"], targets)
        if scored["rows_scored"] < rows:
            sentence += (
                f"  on the {scored['rows_scored']:,} of {rows:,} rows that have their targets "
                "and a prediction"
            )
        report.status(sentence)


def _class_sentence(scored: dict[str, Any], rows: int, unknown: dict[str, int]) -> str:
    sentence = f"accuracy {percent(scored['accuracy'])}"
    if scored["log_loss"] is not None:
        sentence += f"  log-loss {fmt(scored['log_loss'], 6)}"
    if scored["unknown_labels"]:
        named = listing([f"{label!r} {n:,}" for label, n in sorted(unknown.items())])
        sentence += (
            f" ({scored['unknown_labels']:,} row(s) hold a label the model does not know, {named}:"
            " wrong in the accuracy, left out of the log-loss)"
        )
    if scored["rows_scored"] < rows:
        sentence += (
            f"  on the {scored['rows_scored']:,} of {rows:,} rows that have their label and a "
            "prediction"
        )
    return sentence


def confusion_table(confusion: dict[str, dict[str, int]]) -> Table:
    """Rows: the true labels; columns: the predicted ones; cells: how many rows."""
    predicted = list(next(iter(confusion.values())))
    table = Table(title="Confusion (rows: true label, columns: predicted)", title_justify="left")
    table.add_column("")
    for p in predicted:
        table.add_column(p, justify="right")
    for truth, row in confusion.items():
        table.add_row(truth, *(str(row.get(p, 0)) for p in predicted))
    return table
