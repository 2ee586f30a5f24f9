"""The sweep-lr report: the table, the theory block, the plot, the suggestion; CSV and JSON."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from babynn_cli.report.console import Reporter
from babynn_cli.report.plot import Series, TextPlot, VLine, new_figure, png_bytes
from babynn_cli.report.words import fmt, percent, run_header, theory_in_words, verdict_cell

if TYPE_CHECKING:
    from collections.abc import Sequence

    from babynn_cli.core.optimizers import OptimizerSpec
    from babynn_cli.core.problem import Problem
    from babynn_cli.core.schedules import Schedule
    from babynn_cli.core.sweep import Sweep, SweepRow


def header(
    report: Reporter,
    source: str,
    features: Sequence[str],
    targets: Sequence[str],
    problem: Problem,
    schedule: Schedule,
    batch_size: int | None,
    optimizer: OptimizerSpec | None = None,
) -> None:
    """What the sweep is about to run, on stderr: fit's header, with the grid for the rate."""
    text = f"{schedule.name} schedule, η0 = each rate of the grid"
    if optimizer is not None and not optimizer.plain:
        text = f"{text}, each run by {optimizer.describe()}"
    for line in run_header(source, features, targets, problem, schedule, batch_size, text):
        report.status(line)


def show(report: Reporter, result: Sweep, gap_tol: float) -> None:
    report.print(table(result, gap_tol, report.width))
    report.print(theory_block(result, gap_tol))
    if result.affine:
        report.print(Text(theory_in_words(result.theory.curvature, True), style="dim"))
    report.print(text_plot(result, report.width))
    s = result.suggested_lr
    if s is None:
        report.print("No rate to suggest: every rate diverged or went unstable.")
        return
    why = (
        " (the rate below the divergence edge that came within "
        f"{gap_tol:g} of the lowest final loss in the fewest epochs)"
    )
    curvature = result.theory.curvature
    best = curvature.suggested_lr
    if result.affine and result.full_batch and s != curvature.fastest_safe_lr:
        if not result.optimizer.plain:
            pass  # η* is plain descent's
        elif curvature.exact:
            why += (
                f"; theory's η* = {fmt(best, 4)} has the best worst-case contraction per epoch, "
                "and from a given start a grid rate can get there sooner"
            )
        else:
            why += (
                f"; below {fmt(curvature.stable_lr, 4)} the loss never rises from any weights "
                "(a bound), faster rates can still converge, as here"
            )
    report.print(Text(f"Suggested learning rate: {fmt(s, 4)}", style="bold") + Text(why))


def _final_column(result: Sweep) -> str:
    return "final val loss" if result.monitor == "validation" else "final loss"


NARROW = 70  # below this many columns the sweep table leaves out best loss and reached at


def table(result: Sweep, gap_tol: float, width: int = 100) -> Table:
    val = result.monitor == "validation"
    narrow = width < NARROW
    t = Table(title=f"Learning-rate sweep ({result.monitor} loss)", title_justify="left")
    t.add_column("", width=1)
    t.add_column("η0", justify="right", no_wrap=True, min_width=6)
    t.add_column("final loss", justify="right", no_wrap=True, min_width=10)
    if val:
        t.add_column("final val loss", justify="right", no_wrap=True, min_width=10)
    classes = any(row.accuracy is not None for row in result.rows)
    if classes:
        t.add_column("accuracy", justify="right", no_wrap=True)
    if not narrow:
        t.add_column("best loss", justify="right", no_wrap=True, min_width=10)
        t.add_column("reached at", justify="right", no_wrap=True, min_width=7)
    t.add_column("verdict", min_width=9)  # the one column that wraps in a narrow terminal
    c = result.theory.curvature
    theory_mark = "η* " if c.exact or c.best_lr <= c.stable_lr else "bound "
    heavy = result.optimizer.heavy
    if heavy:
        theory_mark = "theory "
    for k, row in enumerate(result.rows):
        diverged = row.verdict.failed
        status = verdict_cell(row.verdict, row.stopped_epoch)
        lr = (theory_mark if row.from_theory else "") + fmt(row.lr, 4)
        cells = [
            "★" if k == result.suggested else "",
            lr,
            "-" if diverged else fmt(row.final_loss, 8),
        ]
        if val:
            cells.append("-" if diverged else fmt(row.final_val_loss, 8))
        if classes:
            cells.append("-" if row.accuracy is None or diverged else percent(row.accuracy))
        reached = "-" if row.reached_epoch is None else str(row.reached_epoch)
        cells += [status] if narrow else [fmt(row.best_loss, 8), reached, status]
        style = "bold green" if k == result.suggested else "red" if diverged else None
        t.add_row(*cells, style=style)
    mark = "η* = 2/(λmax+λmin), the best worst-case contraction per epoch"
    if heavy:
        nesterov = result.optimizer.name == "nesterov"
        formula = "1/λmax" if nesterov else "(1+√β)²/λmax"
        mark = f"theory: {formula}, the rate theory sets beside β = {fmt(result.optimizer.beta, 4)}"
    elif theory_mark == "bound ":
        mark = "bound: the largest rate that never raises the loss, from any weights"
    marks = f" · {mark}" if c.exact or any(row.from_theory for row in result.rows) else ""
    t.caption = (
        f"reached at: the first epoch within {gap_tol:g} (relative) of the lowest final loss · "
        f"★ suggested{marks}"
    )
    return t


def theory_block(result: Sweep, gap_tol: float) -> Table:
    th = result.theory
    title = "Theory (full-batch gradient descent, constant rate)"
    if result.separable:
        title = "Theory (separable classes: no optimum, the bound holds)"
    elif not result.affine:
        title = (
            "Theory for the affine model only (a reference: the network's loss is not quadratic)"
        )
    t = Table(title=title, title_justify="left")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    c = th.curvature
    if c.exact:
        t.add_row("λmax of H = (2/N) X̃ᵀX̃", fmt(c.lambda_max, 6))
        t.add_row("λmin", fmt(c.lambda_min, 6))
        t.add_row("κ = λmax/λmin", fmt(c.condition_number, 6))
        t.add_row("stability bound 2/λmax", fmt(c.stable_lr, 6))
        t.add_row("η* = 2/(λmax+λmin), best worst-case contraction", fmt(c.best_lr, 6))
        t.add_row("optimum loss L* (least squares)", fmt(th.optimum_loss, 10))
    else:  # cross-entropy: a bound for any weights, the exact curvature at the optimum
        assert c.bound is not None
        t.add_row("bound on λmax for any weights", fmt(c.bound, 6))
        t.add_row("rates that never raise the loss: below", fmt(c.stable_lr, 6))
        if result.affine:
            t.add_row("λmax* at the optimum (exact there)", fmt(c.lambda_max, 6))
            t.add_row("λmin*", fmt(c.lambda_min, 6))
            t.add_row("κ* = λmax*/λmin*", fmt(c.condition_number, 6))
            t.add_row("η* = 2/(λmax*+λmin*), best contraction near L*", fmt(c.best_lr, 6))
            t.add_row("optimum loss L* (Newton)", fmt(th.optimum_loss, 10))
    if result.affine:
        predicted = "more than 10⁶" if th.predicted_epochs is None else str(th.predicted_epochs)
        what = "η*" if c.exact else f"{fmt(c.fastest_safe_lr, 4)} (an estimate)"
        t.add_row(f"epochs {what} needs to reach (L - L*)/L* ≤ {gap_tol:g}", predicted)
    if any(r.from_theory for r in result.rows):
        epochs = int(result.result.history.epoch[-1])
        seen = result.measured_epochs
        t.add_row(
            "  … measured in this sweep", f"more than {epochs}" if seen is None else str(seen)
        )
    low, high = result.edge
    found = (
        "no rate diverged"
        if high is None
        else f"between {fmt(low, 4)} and {fmt(high, 4)}"
        if low is not None
        else f"below {fmt(high, 4)} (every rate diverged)"
    )
    t.add_row("divergence edge found by the sweep", found)
    if not result.affine and c.exact:
        t.caption = (
            "The bound 2/λmax and η* hold for the affine model on these features; a network's "
            "edge is the one the sweep found."
        )
    elif not result.affine and not result.separable:
        t.caption = "The bound holds for the affine model; a network's edge is the sweep's."
    elif not result.full_batch:
        t.caption = (
            "The bound is for full-batch gradient descent; with minibatches the gradient is noisy "
            "and the edge the sweep found is the one that holds."
        )
    return t


def _epochs(row: SweepRow, affine: bool) -> int | None:
    """The epochs a rate needed: to come within --gap-tol of L* (affine), or of the sweep's best
    loss (a network)."""
    return row.epochs_to_optimum if affine else row.reached_epoch


def text_plot(result: Sweep, columns: int = 100) -> Any:
    """Which rate is fastest: the epochs each rate needed, measured (●) and, at full batch with a
    constant rate, predicted by theory from the initial weights (○); failed rates on top (x)."""
    ok = [r for r in result.rows if not r.verdict.failed]
    bad = [r for r in result.rows if r.verdict.failed]
    measured: list[tuple[float, float]] = []
    for r in ok:
        epochs = _epochs(r, result.affine)
        if epochs:
            measured.append((r.lr, float(epochs)))
    if not measured and not any(r.predicted_epochs for r in result.rows):
        return _loss_plot(result, ok, bad, columns)  # no epochs to show: what the runs reached
    series = [Series([lr for lr, _ in measured], [e for _, e in measured], "●", "cyan", "measured")]
    predicted = [(r.lr, r.predicted_epochs) for r in result.rows if r.predicted_epochs]
    if predicted:
        xs, ys = zip(*predicted, strict=True)
        series.insert(0, Series(list(xs), list(ys), "○", "yellow", "theory"))
    s = result.suggested
    chosen = None if s is None else _epochs(result.rows[s], result.affine)
    if s is not None and chosen:
        label = f"suggested {fmt(result.rows[s].lr, 4)}"
        series.append(Series([result.rows[s].lr], [float(chosen)], "◆", "bold green", label))
    top = []
    if bad:
        top = [Series([r.lr for r in bad], [0.0] * len(bad), "x", "red", "diverged or unstable")]
    bound, name = _bound(result)
    vlines = [VLine(bound, "┊", "yellow", f"{name} = {fmt(bound, 4)}")] if result.affine else []
    what = "L*" if result.affine else "the best loss"
    return TextPlot(
        series,
        vlines,
        top,
        x_label="learning rate η0 (log)",
        y_label=f"epochs to come within --gap-tol of {what} (log); fewer is faster",
    ).fit(columns)


def _loss_plot(result: Sweep, ok: list[SweepRow], bad: list[SweepRow], columns: int) -> Any:
    """When no rate came within --gap-tol (minibatches settle at a noise floor): each steady
    rate's final loss, failed rates on top (x)."""
    finals = [(r.lr, r.final_monitored) for r in ok if math.isfinite(r.final_monitored)]
    series = [Series([lr for lr, _ in finals], [L for _, L in finals], "●", "cyan", "final loss")]
    top = []
    if bad:
        top = [Series([r.lr for r in bad], [0.0] * len(bad), "x", "red", "diverged or unstable")]
    s = result.suggested
    if s is not None:
        row = result.rows[s]
        label = f"suggested {fmt(row.lr, 4)}"
        series.append(Series([row.lr], [row.final_monitored], "◆", "bold green", label))
    monitored = "validation" if result.monitor == "validation" else "training"
    return TextPlot(
        series,
        [],
        top,
        x_label="learning rate η0 (log)",
        y_label=f"final {monitored} loss by rate (log): no rate came within --gap-tol, so no "
        "epochs to compare",
    ).fit(columns)


def columns(result: Sweep) -> dict[str, list[Any]]:
    rows = result.rows
    table: dict[str, list[Any]] = {
        "lr": [r.lr for r in rows],
        "final_loss": [r.final_loss for r in rows],
        "final_val_loss": [r.final_val_loss for r in rows],
        "final_epoch": [r.final_epoch for r in rows],
        "best_loss": [r.best_loss for r in rows],
        "reached_epoch": [r.reached_epoch for r in rows],
        "epochs_to_optimum": [r.epochs_to_optimum for r in rows],
        "predicted_epochs": [r.predicted_epochs for r in rows],
        "verdict": [r.verdict.value for r in rows],
        "stop_reason": [r.stop_reason.value for r in rows],
        "stopped_epoch": [r.stopped_epoch for r in rows],
        "from_theory": [r.from_theory for r in rows],
        "suggested": [k == result.suggested for k in range(len(rows))],
    }
    if any(
        r.accuracy is not None for r in rows
    ):  # the share of training rows each run's final weights classify right
        table["accuracy"] = [r.accuracy for r in rows]
    return table


def as_json(result: Sweep, rule: str, gap_tol: float) -> dict[str, Any]:
    th = result.theory
    return {
        "monitor": result.monitor,
        "gap_tol": gap_tol,
        "rows": [
            dict(zip(columns(result), v, strict=True))
            for v in zip(*columns(result).values(), strict=True)
        ],
        "best_loss": result.best_loss,
        "measured_epochs_best_lr": result.measured_epochs,
        "suggested_lr": result.suggested_lr,
        "suggestion_rule": rule,
        "edge": {"largest_stable": result.edge[0], "smallest_diverged": result.edge[1]},
        "full_batch": result.full_batch,
        "theory_applies": result.affine,
        "theory": {
            "lambda_max": th.curvature.lambda_max,
            "lambda_min": th.curvature.lambda_min,
            "condition_number": th.curvature.condition_number,
            "stable_lr": th.curvature.stable_lr,
            "best_lr": th.curvature.best_lr,
            "optimum_loss": th.optimum_loss,
            "initial_loss": th.initial_loss,
            "predicted_epochs": th.predicted_epochs,
        },
    }


def plot_png(result: Sweep) -> bytes:
    """Two panels: the epochs each rate needed (measured, and theory's prediction), and the final
    loss; the stability bound and the suggestion marked on both."""
    figure, (top, bottom) = new_figure(height=7.0, rows=2)
    ok = [r for r in result.rows if not r.verdict.failed]
    bad = [r for r in result.rows if r.verdict.failed]
    measured = [(r.lr, _epochs(r, result.affine)) for r in ok if _epochs(r, result.affine)]
    if measured:
        top.loglog(*zip(*measured, strict=True), "o", label="measured")  # type: ignore[attr-defined]
    predicted = [(r.lr, r.predicted_epochs) for r in result.rows if r.predicted_epochs]
    if predicted:
        top.loglog(*zip(*predicted, strict=True), "-", alpha=0.6, label="theory")  # type: ignore[attr-defined]
    final = [r.final_monitored for r in ok]
    bottom.loglog([r.lr for r in ok], final, "o-", label=_final_column(result))  # type: ignore[attr-defined]
    if bad:
        high = max(final) if final else 1.0
        bottom.plot([r.lr for r in bad], [high] * len(bad), "rx", label="diverged or unstable")  # type: ignore[attr-defined]
    for ax in (top, bottom):
        if result.affine:
            bound, name = _bound(result)
            ax.axvline(bound, color="orange", ls="--", label=name)  # type: ignore[attr-defined]
        if result.suggested is not None:
            ax.axvline(result.rows[result.suggested].lr, color="green", ls=":", label="suggested")  # type: ignore[attr-defined]
        ax.legend(loc="best", fontsize="small")  # type: ignore[attr-defined]
    what = "L*" if result.affine else "the best loss"
    top.set_ylabel(f"epochs to within --gap-tol of {what}")  # type: ignore[attr-defined]
    bottom.set_ylabel(_final_column(result))  # type: ignore[attr-defined]
    bottom.set_xlabel("learning rate η0")  # type: ignore[attr-defined]
    top.set_title("babynn sweep-lr: which rate is fastest")  # type: ignore[attr-defined]
    return png_bytes(figure)


def _bound(result: Sweep) -> tuple[float, str]:
    """The stability bound the plot marks: plain descent's 2/λmax, or momentum's for its β."""
    c, rule = result.theory.curvature, result.optimizer
    if rule.heavy and c.exact:
        nesterov = rule.name == "nesterov"
        name = "2(1+β)/((1+2β)λmax)" if nesterov else "2(1+β)/λmax"
        return c.momentum_stable_lr(rule.beta, nesterov), name
    return c.stable_lr, "2/λmax"
