"""The compare report: the ranked table with the optimum's row, the loss curves; CSV and JSON."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from rich import box
from rich.table import Table

from babynn_cli.report.console import Reporter
from babynn_cli.report.plot import Series, TextPlot, new_figure, png_bytes
from babynn_cli.report.words import (
    compare_header,
    fmt,
    percent,
    separable_in_words,
    verdict_cell,
)

if TYPE_CHECKING:
    from babynn_cli.core.compare import Comparison
    from babynn_cli.core.problem import Problem

MARKS = "123456789abcdefghijklmnopqrstuvwxyz"
STYLES = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta")


WIDE = 120  # below this many columns the table leaves out L - L*, the weights' distance and time


NARROW = 80  # below this many columns the table leaves out the final losses too


def header(report: Reporter, source: str, problem: Problem, configs: int, saved: int) -> None:
    """What compare is about to do, on stderr."""
    report.status(compare_header(source, problem, configs, saved))


def show(report: Reporter, result: Comparison, gap_tol: float) -> None:
    width = report.width
    report.print(table(result, gap_tol, wide=width >= WIDE, narrow=width < NARROW))
    if not result.has_reference:
        report.status(separable_in_words())
    elif not result.reference.unique:
        report.status(
            "the features are collinear: the least-squares optimum is not unique (many weights "
            "reach the same L*); its row shows the one of least norm"
        )
    if _runs(result):  # saved models alone have no curves
        report.print(curves(result, report.width))


def table(result: Comparison, gap_tol: float, wide: bool = True, narrow: bool = False) -> Table:
    val = result.reference_val_loss is not None or any(r.val_loss is not None for r in result.rows)
    optimum = f"the {result.optimum_name}"
    has_ref = result.has_reference
    t = Table(
        title=f"Compared with {optimum}" if has_ref else "Compared by their final loss",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    t.add_column("#", justify="right")
    t.add_column("configuration", min_width=12)
    if not narrow:
        t.add_column("final loss", justify="right", no_wrap=True)
    if val and not narrow:
        t.add_column("val loss", justify="right", no_wrap=True)
    if result.classes:
        t.add_column("accuracy", justify="right", no_wrap=True)
    if wide and has_ref:
        t.add_column("L-L*", justify="right", no_wrap=True)
    if has_ref:
        t.add_column("(L-L*)/L*", justify="right", no_wrap=True)
    if wide and has_ref:
        t.add_column("‖W̃ - W̃*‖", justify="right", no_wrap=True)
    if has_ref:
        t.add_column("reached", justify="right", no_wrap=True)
    t.add_column("verdict", min_width=9)
    if wide:
        t.add_column("time s", justify="right", no_wrap=True)

    def add(cells: dict[str, str], style: str | None) -> None:
        keep = [c.header for c in t.columns]
        t.add_row(*(cells[h] for h in keep if isinstance(h, str)), style=style)

    digits = 9 if wide else 7
    ref, ref_accuracy = result.reference, result.reference_accuracy
    reference = {
        "#": "",
        "configuration": result.reference_label,
        "final loss": fmt(ref.loss, digits),
        "val loss": fmt(result.reference_val_loss, digits),
        "accuracy": "-" if ref_accuracy is None else percent(ref_accuracy),
        "L-L*": "0",
        "(L-L*)/L*": "0",
        "‖W̃ - W̃*‖": "0",
        "reached": "-",
        "verdict": "optimum",
        "time s": "-",
    }
    if has_ref:
        add(reference, "italic")
    for k, row in enumerate(result.rows):
        diverged = row.verdict is not None and row.verdict.failed

        def number(value: float | None, digits: int = 3, hide: bool = diverged) -> str:
            return "-" if hide else fmt(value, digits)

        cells = {
            "#": MARKS[k] if k < len(MARKS) else "",
            "configuration": row.label,
            "final loss": number(row.train_loss, digits),
            "val loss": number(row.val_loss, digits),
            "accuracy": "-" if row.accuracy is None or diverged else percent(row.accuracy),
            "L-L*": number(row.gap),
            "(L-L*)/L*": number(row.relative_gap),
            "‖W̃ - W̃*‖": number(row.weight_distance),
            "reached": "-" if row.reached_epoch is None else str(row.reached_epoch),
            "verdict": "saved model"
            if row.verdict is None
            else verdict_cell(row.verdict, row.epochs_run or 0),
            "time s": "-" if row.seconds is None else f"{row.seconds:.3f}",
        }
        add(cells, "bold green" if k == result.best else "red" if diverged else None)
    ranked = f"ranked by L - L*; reached: the first epoch with (L - L*)/L* ≤ {gap_tol:g}"
    if not has_ref:
        ranked = "ranked by the final loss (separable classes: no optimum to measure against)"
    t.caption = ranked + (
        "; runs of one batch size and rule train together and share their wall time" if wide else ""
    )
    return t


def _runs(result: Comparison) -> list[tuple[int, Any]]:
    return [(k, r) for k, r in enumerate(result.rows) if r.curve is not None]


def _epochs(row: Any) -> np.ndarray:
    """The epochs of a row's curve."""
    return row.curve_epochs if row.curve_epochs is not None else np.arange(len(row.curve))


def _log_epochs(result: Comparison) -> bool:
    """A log epoch axis when the runs differ in length (or are long): short runs stay visible."""
    lengths = [int(_epochs(row)[-1]) + 1 for _, row in _runs(result)]
    return bool(lengths) and (max(lengths) > 30 or max(lengths) > 3 * min(lengths))


def curves(result: Comparison, columns: int = 100) -> Any:
    """Each run's (L - L*)/L* by epoch; L/L* when networks run, which can go below the optimum."""
    networks = any(r.W is None for _, r in _runs(result)) and result.has_reference
    series = []
    for k, row in _runs(result):
        mark = MARKS[k] if k < len(MARKS) else "·"
        epochs = [int(e) for e in _epochs(row)]
        values = list(row.curve + 1.0) if networks else list(row.curve)
        series.append(Series(epochs, values, mark, STYLES[k % len(STYLES)], row.label))
    label = "L/L*, log scale (below 1: past the best affine fit)" if networks else None
    if not result.has_reference:
        label = "training loss, log scale"
    log_x = _log_epochs(result)
    return TextPlot(
        series,
        x_label="epoch (log)" if log_x else "epoch",
        y_label=label or "(L - L*)/L*, log scale",
        x_log=log_x,
    ).fit(columns)


def _row_record(row: Any, features: list[str]) -> dict[str, Any]:
    config = row.config
    return {
        "label": row.label,
        "kind": "run" if config is not None else "saved model",
        "model": "affine" if row.W is not None else "network",
        "schedule": config.schedule.name if config is not None else None,
        "lr": config.lr if config is not None else None,
        "batch_size": config.batch_size if config is not None else None,
        "final_loss": row.train_loss,
        "val_loss": row.val_loss,
        "accuracy": row.accuracy,
        "gap": row.gap if math.isfinite(row.gap) else None,
        "relative_gap": row.relative_gap if math.isfinite(row.relative_gap) else None,
        "weight_distance": row.weight_distance,
        "reached_epoch": row.reached_epoch,
        "verdict": None if row.verdict is None else row.verdict.value,
        "stop_reason": None if row.stop_reason is None else row.stop_reason.value,
        "epochs_run": row.epochs_run,
        "final_epoch": row.final_epoch,
        "seconds": row.seconds,
    }


def columns(result: Comparison, features: list[str]) -> dict[str, list[Any]]:
    records = [
        {
            "label": result.reference_label,
            "kind": "optimum",
            "model": "affine",
            "schedule": None,
            "lr": None,
            "batch_size": None,
            "final_loss": result.reference.loss,
            "val_loss": result.reference_val_loss,
            "gap": 0.0,
            "relative_gap": 0.0,
            "weight_distance": 0.0,
            "reached_epoch": None,
            "verdict": "optimum",
            "stop_reason": None,
            "epochs_run": None,
            "final_epoch": None,
        },
        *(_row_record(row, features) for row in result.rows),
    ]
    # no wall times: identical runs write identical files (--json has the seconds)
    return {key: [r[key] for r in records] for key in records[0]}


def as_json(
    result: Comparison, features: list[str], targets: list[str], gap_tol: float
) -> dict[str, Any]:
    ref = result.reference
    rows = []
    for row in result.rows:
        record = _row_record(row, features)
        record["weights"] = None if row.W is None else row.W.tolist()
        record["bias"] = None if row.bias is None else row.bias.tolist()
        rows.append(record)
    return {
        "features": features,
        "targets": targets,
        "gap_tol": gap_tol,
        "reference": None
        if not result.has_reference
        else {
            "label": result.reference_label,
            "final_loss": ref.loss,
            "val_loss": result.reference_val_loss,
            "accuracy": result.reference_accuracy,
            "weights": ref.W.tolist(),
            "bias": ref.w0.tolist(),
            "unique": ref.unique,
        },
        "separable": result.classes and not result.has_reference,
        "rows": rows,
        "best": None if result.best is None else result.rows[result.best].label,
    }


def plot_png(result: Comparison, gap_tol: float) -> bytes:
    figure, ax = new_figure(width=9.0)
    for _, row in _runs(result):
        curve = row.curve
        epochs = _epochs(row)
        positive = [(e, g) for e, g in zip(epochs, curve, strict=True) if g > 0]
        if positive:
            xs, ys = zip(*positive, strict=True)
            ax.semilogy(xs, ys, label=row.label)  # type: ignore[attr-defined]
    if result.has_reference:
        ax.axhline(gap_tol, color="gray", ls=":", label=f"--gap-tol {gap_tol:g}")  # type: ignore[attr-defined]
    if _log_epochs(result):
        ax.set_xscale("symlog", linthresh=1)  # type: ignore[attr-defined]  # epoch 0 stays on it
        ax.set_xlim(left=0)  # type: ignore[attr-defined]
    ax.set_xlabel("epoch")  # type: ignore[attr-defined]
    what = result.optimum_name
    ax.set_ylabel("(L-L*)/L*" if result.has_reference else "training loss")  # type: ignore[attr-defined]
    title = f"gap to the {what}" if result.has_reference else "training loss (no optimum)"
    ax.set_title(f"babynn compare: {title}")  # type: ignore[attr-defined]
    # the legend beside the axes, never over the curves
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))  # type: ignore[attr-defined]
    return png_bytes(figure)
