"""fit's pictures: the loss by epoch in the terminal and as a PNG."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from babynn_cli.report.plot import HLine, Series, TextPlot, new_figure, png_bytes

if TYPE_CHECKING:
    from babynn_cli.core.fit import Fitted
    from babynn_cli.core.problem import Problem

LOG_EPOCHS_FROM = 30  # runs longer than this get a log epoch axis: the early epochs show


def _curves(fitted: Fitted) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    h = fitted.history
    epochs = h.epoch.astype(float)
    val = h.val_loss[:, 0] if h.val_loss is not None else None
    return epochs, h.train_loss[:, 0], val


def curve(fitted: Fitted, problem: Problem, columns: int) -> Any:
    """The training loss (and validation loss) by epoch, log scales, L* as a line."""
    epochs, train, val = _curves(fitted)
    log_x = epochs[-1] > LOG_EPOCHS_FROM
    series = [Series(list(epochs), list(train), "•", "cyan", "training loss")]
    if val is not None:
        series.append(Series(list(epochs), list(val), "∘", "magenta", "validation loss"))
    hlines = []
    if problem.affine:
        hlines.append(HLine(problem.optimum_loss, "┄", "yellow", "L* (least squares)"))
    plot = TextPlot(
        series,
        hlines=hlines,
        x_log=log_x,
        x_label="epoch (log)" if log_x else "epoch",
        y_label="loss (log)" + (": epoch 0 is in the table" if log_x else ""),
    )
    return plot.fit(columns)


def plot_png(fitted: Fitted, problem: Problem) -> bytes:
    figure, ax = new_figure()
    epochs, train, val = _curves(fitted)
    ax.plot(epochs, train, label="training loss")  # type: ignore[attr-defined]
    if val is not None:
        ax.plot(epochs, val, label="validation loss")  # type: ignore[attr-defined]
    if problem.affine:
        ax.axhline(problem.optimum_loss, color="orange", ls="--", label="L* (least squares)")  # type: ignore[attr-defined]
    ax.set_yscale("log")  # type: ignore[attr-defined]
    if epochs[-1] > LOG_EPOCHS_FROM:
        ax.set_xscale("symlog", linthresh=1)  # type: ignore[attr-defined]  # epoch 0 stays on it
        ax.set_xlim(left=0)  # type: ignore[attr-defined]
    ax.set_xlabel("epoch")  # type: ignore[attr-defined]
    ax.set_ylabel("loss")  # type: ignore[attr-defined]
    ax.set_title(f"babynn fit: {fitted.verdict.value}")  # type: ignore[attr-defined]
    ax.legend(loc="best")  # type: ignore[attr-defined]
    return png_bytes(figure)
