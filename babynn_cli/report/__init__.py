"""Everything babynn shows a person: the only module that imports rich.

Tables go to stdout; progress, status lines and the run's header go to stderr, so that stdout
holds only what the user asked for. Nothing animates unless stderr is a terminal.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from babynn_cli.jsontext import dumps

if TYPE_CHECKING:
    import numpy as np

    from babynn_cli.core.fit import Fitted
    from babynn_cli.core.mlp import MLP
    from babynn_cli.core.problem import Problem
    from babynn_cli.core.schedules import Schedule
    from babynn_cli.core.train import EpochInfo, History, RunEnd
    from babynn_cli.persistence import ModelFile

LOG_WIDTH = 160  # columns for tables when stdout is not a terminal
PLAIN_LINE_EVERY = 10.0  # seconds between plain progress lines when stderr is not a terminal


def fmt(x: float | None, digits: int = 6) -> str:
    """A number for a table: significant digits, '-' for missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}"


class Reporter:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.out = Console(highlight=False)
        if not self.out.is_terminal and "COLUMNS" not in os.environ:
            # A log or a pipe: wide lines read better there than tables squeezed to 80 columns.
            self.out = Console(highlight=False, width=LOG_WIDTH)
        self.err = Console(stderr=True, highlight=False)

    @property
    def width(self) -> int:
        return self.out.width

    # -- messages ----------------------------------------------------------------------------
    def status(self, message: str) -> None:
        """A human message on stderr, unless --quiet."""
        if not self.quiet:
            self.err.print(message, soft_wrap=True, markup=False)

    def compare_header(self, source: str, problem: Problem, configs: int, saved: int) -> None:
        name = "standard input" if source == "-" else f"'{source}'"
        self.status(
            f"{name}: {problem.n_train} training rows"
            + (f", {problem.n_val} held out for validation" if problem.n_val else "")
            + f"; {configs} configuration(s)"
            + (f" and {saved} saved model(s)" if saved else "")
            + " against the least-squares optimum"
        )

    def metrics_line(self, mse: float, r2: Sequence[float], targets: Sequence[str]) -> None:
        r2_text = ", ".join(f"{t} {fmt(v, 4)}" for t, v in zip(targets, r2, strict=True))
        self.status(f"MSE {fmt(mse, 8)}  R² {r2_text}")

    def emit_json(self, doc: dict) -> None:
        """Data the user asked for: printed even with --quiet, NaN and infinity as null."""
        sys.stdout.write(dumps(doc) + "\n")
        sys.stdout.flush()

    def fit_header(
        self,
        source: str,
        features: Sequence[str],
        targets: Sequence[str],
        problem: Problem,
        schedule: Schedule,
        batch_size: int | None,
        schedule_text: str | None = None,
    ) -> None:
        """What is about to run: the data, the method, and what theory says of the rate."""
        from babynn_cli.core.schedules import describe

        if self.quiet:
            return
        name = "standard input" if source == "-" else source
        val = f", {problem.n_val} held out for validation" if problem.n_val else ""
        self.status(
            f"{name}: {problem.n_train} training rows{val}; "
            f"{len(features)} feature(s) → {', '.join(targets)}"
        )
        if batch_size is None or batch_size >= problem.n_train:
            method = "full-batch gradient descent"
        elif batch_size == 1:
            method = "stochastic gradient descent (batch size 1)"
        else:
            method = f"minibatch gradient descent (batch size {batch_size})"
        scaled = "standardised features" if problem.standardized else "raw features"
        if not problem.affine:
            model: MLP = problem.model  # type: ignore[assignment]
            shape = " → ".join(str(size) for size in model.sizes)
            act = model.activation
            params = model.n_params()
            self.status(f"network: {shape} ({act} after each hidden layer), {params} parameters")
        self.status(f"method: {method} on {scaled}; {schedule_text or describe(schedule)}")
        c = schedule.conditions()
        verdict = "meets" if c.both else "does not meet"
        self.status(
            f"schedule {verdict} the notes' conditions: Σ η(t) = ∞ {_mark(c.sum_diverges)}, "
            f"Σ η(t)² < ∞ {_mark(c.sum_of_squares_converges)}"
        )
        if problem.affine and schedule_text is None:
            curvature = problem.curvature()
            self.status(
                f"full-batch stability bound 2/λmax = {fmt(curvature.stable_lr, 4)}, "
                f"fastest constant rate 2/(λmax+λmin) = {fmt(curvature.best_lr, 4)}"
            )

    def fit_tables(
        self,
        fitted: Fitted,
        problem: Problem,
        features: Sequence[str],
        targets: Sequence[str],
        tol: float,
        patience: int,
        output: Path,
    ) -> None:
        """After a fit: the loss by epoch, the summary, the weights (or the network's layers)."""
        self.loss_table(fitted.history)
        self.fit_summary(fitted, targets, tol, patience, output, problem.optimum_loss)
        if fitted.W is not None and fitted.bias is not None:
            self.weights_table(features, targets, fitted.W, fitted.bias)
        else:
            self.network_table(problem.model)

    def fit_summary(
        self,
        fitted: Fitted,
        targets: Sequence[str],
        tol: float,
        patience: int,
        output: object,
        optimum: float,
    ) -> None:
        run = fitted.end
        last = fitted.history.seconds[-1]
        gap = fitted.train_loss - optimum
        relative = f" ({fmt(gap / optimum, 3)} of L*)" if optimum > 0 else ""
        name = "least-squares optimum L*" if fitted.W is not None else "best affine fit L*"
        items = [
            ("epochs run", str(run.epochs_run)),
            ("stopped", stop_message(run, tol, patience)),
            ("training loss", fmt(fitted.train_loss, 10)),
            (name, fmt(optimum, 10)),
            ("gap L - L*", f"{fmt(gap, 3)}{relative}"),
            ("R²", _per_target(targets, fitted.train_r2)),
        ]
        if fitted.val_loss is not None and fitted.val_r2 is not None:
            items.append(("validation loss", fmt(fitted.val_loss, 10)))
            items.append(("validation R²", _per_target(targets, fitted.val_r2)))
        items.append(("time", f"{last:.3f} s"))
        items.append(("model file", str(output)))
        self.summary(items)

    # -- progress ----------------------------------------------------------------------------
    @contextmanager
    def progress(
        self, epochs: int, label: str = "training"
    ) -> Iterator[Callable[[EpochInfo], None]]:
        """A callback for the training loop's `on_epoch`.

        On a terminal: a transient Rich bar (epoch, loss, rate, time left). Elsewhere: a plain
        line every PLAIN_LINE_EVERY seconds, so that short runs print nothing per epoch.
        With --quiet: nothing.
        """
        if self.quiet:
            yield lambda info: None
        elif self.err.is_terminal:
            bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("epoch {task.completed}/{task.total}"),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[lr]}"),
                TimeRemainingColumn(),
                console=self.err,
                transient=True,
            )
            task = bar.add_task(label, total=epochs, loss="-", lr="-")

            def update(info: EpochInfo) -> None:
                loss, lr = _progress_fields(info)
                bar.update(task, completed=info.epoch, loss=loss, lr=lr)

            with bar:
                yield update
        else:
            last = time.monotonic()

            def line(info: EpochInfo) -> None:
                nonlocal last
                now = time.monotonic()
                if now - last >= PLAIN_LINE_EVERY:
                    last = now
                    loss, lr = _progress_fields(info)
                    self.status(f"{label}: epoch {info.epoch}/{info.epochs}  loss {loss}  {lr}")

            yield line

    # -- tables ------------------------------------------------------------------------------
    def print(self, renderable: object) -> None:
        if not self.quiet:
            self.out.print(renderable)

    def loss_table(self, history: History, rows: int = 12) -> None:
        """Epochs spread on a log scale, plus the first and the last."""
        import numpy as np

        last = int(history.epoch[-1])
        wanted = {0, last}
        if last > 0:
            wanted |= {int(e) for e in np.unique(np.round(np.geomspace(1, last, rows)))}
        table = Table(title="Loss by epoch", title_justify="left")
        table.add_column("epoch", justify="right")
        table.add_column("updates", justify="right")
        table.add_column("η", justify="right")
        table.add_column("training loss", justify="right")
        if history.val_loss is not None:
            table.add_column("validation loss", justify="right")
        for i, epoch in enumerate(history.epoch):
            if int(epoch) not in wanted:
                continue
            cells = [
                str(epoch),
                str(history.updates[i]),
                fmt(float(history.lr[i, 0]), 4),
                fmt(float(history.train_loss[i, 0]), 8),
            ]
            if history.val_loss is not None:
                cells.append(fmt(float(history.val_loss[i, 0]), 8))
            table.add_row(*cells)
        self.print(table)

    def summary(self, items: Sequence[tuple[str, str]]) -> None:
        table = Table(title="Summary", title_justify="left", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for key, value in items:
            table.add_row(key, value)
        self.print(table)

    def network_table(self, model: Any) -> None:
        """Layer by layer: its shape, activation and parameters."""
        table = Table(title="Network (on standardised features)", title_justify="left")
        table.add_column("layer", justify="right")
        table.add_column("inputs → outputs")
        table.add_column("activation")
        table.add_column("parameters", justify="right")
        sizes = model.sizes
        for i in range(model.depth):
            act = model.activation if i < model.depth - 1 else "none (output)"
            params = (sizes[i] + 1) * sizes[i + 1]
            table.add_row(str(i + 1), f"{sizes[i]} → {sizes[i + 1]}", act, str(params))
        self.print(table)

    def weights_table(
        self, features: Sequence[str], targets: Sequence[str], W: np.ndarray, bias: np.ndarray
    ) -> None:
        table = Table(title="Weights (data's own units)", title_justify="left")
        table.add_column("feature")
        for t in targets:
            table.add_column(t, justify="right")
        for i, f in enumerate(features):
            table.add_row(f, *(fmt(float(w), 8) for w in W[i]))
        table.add_row("(bias)", *(fmt(float(b), 8) for b in bias), style="italic")
        self.print(table)


def stop_message(run: RunEnd, tol: float, patience: int) -> str:
    """Why training stopped, in words."""
    reason = run.stop_reason
    if reason == "max_epochs":
        return f"ran all {run.epochs_run} epochs asked for"
    if reason == "converged":
        return f"training loss improved by less than {tol:g} (relative) for {patience} epochs"
    if reason == "early_stopping":
        return (
            f"validation loss improved by less than {tol:g} (relative) for {patience} epochs; "
            f"kept the weights of epoch {run.best_epoch}"
        )
    if reason == "interrupted":
        return f"interrupted (Ctrl-C) during epoch {run.epochs_run + 1}"
    return f"diverged at epoch {run.diverged_epoch}"


def divergence_hint(problem: Problem, batch_size: int | None) -> str:
    """What rate would be stable, for the one-line divergence error."""
    if not problem.affine:
        return "try a smaller --lr (the 2/λmax bound is the affine model's, not a network's)"
    curvature = problem.curvature()
    bound = fmt(curvature.stable_lr, 4)
    text = f"full-batch gradient descent on this data is stable below {bound} (2/λmax)"
    if batch_size is not None and batch_size < problem.n_train:
        return f"{text}, and --batch-size {batch_size} needs a smaller rate"
    return f"{text}, e.g. --lr {fmt(curvature.suggested_lr)}"


def divergence_message(fitted: Fitted, problem: Problem, batch_size: int | None) -> str:
    end = fitted.end
    loss = fmt(float(fitted.history.train_loss[-1, 0]))
    return (
        f"training diverged at epoch {end.diverged_epoch} with learning rate "
        f"{fmt(end.diverged_lr)} (loss {loss}); " + divergence_hint(problem, batch_size)
    )


def history_columns(h: History) -> dict[str, Any]:
    """One run's history as the columns of --history and of --json's `history`."""
    return {
        "epoch": h.epoch,
        "updates": h.updates,
        "lr": h.lr[:, 0],
        "train_loss": h.train_loss[:, 0],
        "val_loss": h.val_loss[:, 0] if h.val_loss is not None else [None] * len(h.epoch),
        "seconds": h.seconds,
    }


def fit_document(
    fitted: Fitted,
    problem: Problem,
    saved: ModelFile,
    result: dict[str, Any],
    schedule: str,
    output: Path,
) -> dict[str, Any]:
    """What `fit --json` prints: the model, how the run went, its history."""
    doc: dict[str, Any] = {
        "model_file": str(output),
        "kind": saved.kind,
        "features": saved.features,
        "targets": saved.targets,
    }
    if fitted.W is not None and fitted.bias is not None:
        curvature = problem.curvature()
        doc |= {
            "weights": fitted.W.tolist(),
            "bias": fitted.bias.tolist(),
            "stable_lr_full_batch": curvature.stable_lr,
            "fastest_lr_full_batch": curvature.best_lr,
        }
    else:
        assert saved.layers is not None
        doc |= {
            "activation": saved.activation,
            "hidden": list(saved.hidden),
            "layers": [{"weights": W.tolist(), "bias": b.tolist()} for W, b in saved.layers],
            "standardization": {
                "mean": problem.scaler.mean.tolist(),
                "scale": problem.scaler.scale.tolist(),
            },
        }
    return (
        doc | result | {"schedule": schedule, "history": records(history_columns(fitted.history))}
    )


def records(columns: dict[str, Any]) -> list[dict[str, Any]]:
    """Columns of equal length as a list of row dicts, numbers as Python numbers."""
    names = list(columns)
    rows = zip(*(columns[n] for n in names), strict=True)
    return [
        {
            n: (None if v is None else v.item() if hasattr(v, "item") else v)
            for n, v in zip(names, row, strict=True)
        }
        for row in rows
    ]


def _progress_fields(info: EpochInfo) -> tuple[str, str]:
    """The loss and rate of one run; for several, the lowest loss and how many still run."""
    import numpy as np

    if len(info.train_loss) == 1:
        return fmt(float(info.train_loss[0])), f"η {fmt(float(info.lr[0]))}"
    losses = info.train_loss[np.isfinite(info.train_loss)]
    best = fmt(float(losses.min())) if losses.size else "-"
    return f"{best} (lowest)", f"{info.running}/{len(info.train_loss)} running"


def _mark(ok: bool) -> str:
    return "yes" if ok else "no"


def _per_target(targets: Sequence[str], values: Sequence[float] | np.ndarray) -> str:
    if len(targets) == 1:
        return fmt(float(values[0]), 6)
    return ", ".join(f"{t} {fmt(float(v), 6)}" for t, v in zip(targets, values, strict=True))
