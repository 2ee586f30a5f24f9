"""Everything babynn shows a person: the only module that imports rich.

Tables go to stdout; progress, status lines and the run's header go to stderr, so that stdout
holds only what the user asked for. Nothing animates unless stderr is a terminal. What goes to
stdout is composed first and written by `flush` once the command's files are in place, so that a
failure while composing leaves no new file, and a reader that closes the pipe early (`| head`)
cannot cost the files.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from babynn_cli.core.choices import MAX_EPOCHS
from babynn_cli.core.stopping import DivergenceRule, StopReason
from babynn_cli.core.verdict import Verdict
from babynn_cli.jsontext import dumps
from babynn_cli.text import one_line

if TYPE_CHECKING:
    from babynn_cli.core.auto import IllConditioned, Plan
    from babynn_cli.core.fit import Fitted
    from babynn_cli.core.history import EpochInfo, History
    from babynn_cli.core.mlp import MLP
    from babynn_cli.core.problem import Problem
    from babynn_cli.core.schedules import Schedule
    from babynn_cli.core.stopping import RunEnd
    from babynn_cli.core.theory import Curvature
    from babynn_cli.core.verdict import Advice, Judgement
    from babynn_cli.persistence import ModelFile

LOG_WIDTH = 160  # columns for tables when stdout is not a terminal
PLAIN_LINE_EVERY = 10.0  # seconds between plain progress lines when stderr is not a terminal


def _streamed(problem: Problem) -> str:
    """What the header says of rows that were never in memory whole."""
    return " (streamed: read in blocks, never whole)" if problem.train.streamed else ""


def fmt(x: float | None, digits: int = 6) -> str:
    """A number for a table: significant digits, '-' for missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}"


class Reporter:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        # markup=False: column names, file names and labels are the user's, printed as they are
        self.out = Console(highlight=False, markup=False)
        if not self.out.is_terminal and "COLUMNS" not in os.environ:
            # A log or a pipe: wide lines read better there than tables squeezed to 80 columns.
            self.out = Console(highlight=False, markup=False, width=LOG_WIDTH)
        self.err = Console(stderr=True, highlight=False, markup=False)
        self._stdout: list[str] = []  # composed, written by `flush`

    @property
    def width(self) -> int:
        return self.out.width

    # -- messages ----------------------------------------------------------------------------
    def status(self, message: str) -> None:
        """A human message on stderr, one line (a name may hold a line break), unless --quiet."""
        if not self.quiet:
            self.err.print(one_line(message), soft_wrap=True, markup=False)

    def compare_header(self, source: str, problem: Problem, configs: int, saved: int) -> None:
        name = "standard input" if source == "-" else f"'{source}'"
        what = [f"{configs} configuration(s)"] if configs else []
        what += [f"{saved} saved model(s)"] if saved else []
        held = f", {problem.n_val} held out for validation" if problem.n_val else ""
        self.status(
            f"{name}{_streamed(problem)}: {problem.n_train} training rows{held}; "
            f"{' and '.join(what)} against the "
            "least-squares optimum" + ("" if configs else " (nothing trained)")
        )

    def metrics_line(self, mse: float, r2: Sequence[float], targets: Sequence[str]) -> None:
        r2_text = ", ".join(f"{t} {fmt(v, 4)}" for t, v in zip(targets, r2, strict=True))
        if len(targets) == 1:
            self.status(f"MSE {fmt(mse, 8)}  R² {r2_text}")
        else:  # babynn's loss sums over outputs; scikit-learn's MSE averages over them
            per = fmt(mse / len(targets), 8)
            self.status(
                f"MSE {fmt(mse, 8)} summed over the {len(targets)} outputs (the notes' loss; "
                f"{per} averaged over them, as scikit-learn reports it)  R² {r2_text}"
            )

    def emit_json(self, doc: dict) -> None:
        """Data the user asked for: printed even with --quiet, NaN and infinity as null."""
        self._stdout.append(dumps(doc) + "\n")

    def emit_text(self, text: str) -> None:
        """Data the user asked for (a CSV), as it is: printed even with --quiet."""
        self._stdout.append(text)

    def flush(self) -> None:
        """Write what was composed for stdout (BrokenPipeError when the reader has gone)."""
        text, self._stdout = "".join(self._stdout), []
        if text:
            sys.stdout.write(text)
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
        plan: Plan | None = None,
        gap_tol: float = 1e-6,
    ) -> None:
        """What is about to run: the data, the method, what theory says of the rate, and what
        babynn chose for the user (`plan`)."""
        from babynn_cli.core.schedules import describe

        if self.quiet:
            return
        name = "standard input" if source == "-" else source
        val = f", {problem.n_val} held out for validation" if problem.n_val else ""
        self.status(
            f"{name}{_streamed(problem)}: {problem.n_train} training rows{val}; "
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
        if batch_size is not None and batch_size < problem.n_train:
            # the notes' conditions are about noisy (stochastic) gradients: only then do they apply
            c = schedule.conditions()
            if c.both:
                meaning = "the rate decays fast enough for the noise to die out, yet slowly enough "
                meaning += "to travel any distance: the loss can settle"
            elif not c.sum_of_squares_converges:
                meaning = "the rate does not decay enough for the gradient's noise to die out: "
                meaning += "expect the loss to settle at a noise floor above the optimum"
            else:
                meaning = "the rate decays so fast that the weights can only travel a bounded "
                meaning += "distance: the loss may stop short"
            self.status(
                f"the notes' conditions for stochastic descent: Σ η(t) = ∞ "
                f"{_mark(c.sum_diverges)}, Σ η(t)² < ∞ {_mark(c.sum_of_squares_converges)}: "
                + meaning
            )
        if problem.affine and problem.curvature().singular:
            self.status(
                "the features are collinear (H = (2/N) X̃ᵀX̃ is singular): the optimum is not "
                "unique, many weights reach the same L*; λmin is its smallest non-zero eigenvalue"
            )
        if problem.affine and schedule_text is None:
            self.status(theory_in_words(problem.curvature()))
        if plan is not None:
            for line in plan_in_words(plan, features, gap_tol):
                self.status(line)

    def fit_tables(
        self,
        fitted: Fitted,
        problem: Problem,
        features: Sequence[str],
        targets: Sequence[str],
        stop: tuple[float, int, float],
        output: str | None,
    ) -> None:
        """After a fit: the loss by epoch as a table and a curve, the summary, the weights beside
        the least-squares ones (or the network's layers). stop: (tol, patience, gap_tol); output:
        the model file written, None when none was."""
        from babynn_cli.report import fit as fit_report

        self.loss_table(fitted.history)
        self.print(fit_report.curve(fitted, problem, self.width))
        self.fit_summary(fitted, problem, targets, stop, output)
        if fitted.W is not None and fitted.bias is not None:
            W_opt, b_opt = problem.optimum_in_data_units()
            self.weights_table(features, targets, (fitted.W, fitted.bias), (W_opt, b_opt))
        else:
            self.network_table(problem.model)

    def fit_summary(
        self,
        fitted: Fitted,
        problem: Problem,
        targets: Sequence[str],
        stop: tuple[float, int, float],
        output: str | None,
    ) -> None:
        tol, patience, gap_tol = stop
        end, optimum = fitted.end, problem.optimum_loss
        gap = fitted.train_loss - optimum
        relative = f" ({fmt(100 * gap / optimum, 3)} % of L*)" if optimum > 0 else ""
        name = "least-squares optimum L*" if fitted.W is not None else "best affine fit L*"
        if output is None:
            saved = "none: no model file written"
        elif end.best_epoch is not None:
            saved = f"epoch {end.weights_epoch} (the best validation loss) in {output}"
        else:
            saved = f"epoch {end.weights_epoch} (the last) in {output}"
        items = [
            ("verdict", what_happened(fitted, gap_tol, patience)),
            ("epochs run", str(end.epochs_run)),
            ("stopped because", stop_message(end, tol, patience)),
            ("training loss", fmt(fitted.train_loss, 10)),
            (name, fmt(optimum, 10)),
            ("gap L - L*", f"{fmt(gap, 3)}{relative}"),
            ("R²", _per_target(targets, fitted.train_r2)),
        ]
        if fitted.val_loss is not None and fitted.val_r2 is not None:
            items.append(("validation loss", fmt(fitted.val_loss, 10)))
            items.append(("validation R²", _per_target(targets, fitted.val_r2)))
        items.append(("training time", f"{fitted.history.seconds[-1]:.3f} s (the epochs only)"))
        items.append(("weights saved", saved))
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
                TaskProgressColumn(),  # a percentage: progress shows under NO_COLOR too
                TextColumn("epoch {task.completed}/{task.total}"),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[lr]}"),
                TimeRemainingColumn(),
                console=self.err,
                transient=True,
            )
            task = bar.add_task(label, total=epochs, loss="-", lr="-")
            shown = {"loss": "-", "lr": "-"}

            def update(info: EpochInfo) -> None:
                loss, lr = _progress_fields(info)
                if loss != "-":  # a run that stopped leaves its last numbers on show
                    shown.update(loss=loss, lr=lr)
                done = info.running == 0  # the last frame: the epoch the runs stopped at
                total = info.epoch if done else epochs
                bar.update(
                    task, completed=info.epoch, total=total, loss=shown["loss"], lr=shown["lr"]
                )

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
                    self.status(
                        f"{label}: epoch {info.epoch}/{info.epochs}  loss {loss}  {lr}  "
                        f"{info.seconds:.0f} s"
                    )

            yield line

    @contextmanager
    def reading(self, label: str, total_rows: int | None = None) -> Iterator[Callable[[int], None]]:
        """A callback for a pass over streamed rows, given the rows read so far.

        On a terminal: a transient Rich line (rows, rate; a bar when the count is known, as in a
        second pass). Elsewhere: a plain line every PLAIN_LINE_EVERY seconds. With --quiet:
        nothing. The pass's closing line is the caller's.
        """
        if self.quiet:
            yield lambda rows: None
        elif self.err.is_terminal:
            bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn() if total_rows else TextColumn(""),
                TextColumn("{task.completed:,} rows"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=self.err,
                transient=True,
            )
            task = bar.add_task(label, total=total_rows, rate="")
            start = time.monotonic()

            def update(rows: int) -> None:
                took = time.monotonic() - start
                rate = f"{rows / took:,.0f} rows/s" if took > 0 else ""
                bar.update(task, completed=rows, rate=rate)

            with bar:
                yield update
        else:
            last = start = time.monotonic()

            def line(rows: int) -> None:
                nonlocal last
                now = time.monotonic()
                if now - last >= PLAIN_LINE_EVERY:
                    last = now
                    self.status(
                        f"{label}: {rows:,} rows read, {rows / (now - start):,.0f} rows/s, "
                        f"{now - start:.0f} s"
                    )

            yield line

    # -- tables ------------------------------------------------------------------------------
    def print(self, renderable: object) -> None:
        """A table or a plot for stdout, rendered now, written by `flush`."""
        if isinstance(renderable, Table) and renderable.title and renderable.min_width is None:
            renderable.min_width = len(str(renderable.title))  # a title never wraps
        if not self.quiet:
            with self.out.capture() as captured:
                self.out.print(renderable)
            self._stdout.append(captured.get())

    def loss_table(self, history: History, rows: int = 12) -> None:
        """Epochs spread on a log scale, plus the first and the last (of a long run's kept epochs,
        the first at or after each point of the scale)."""

        last = int(history.epoch[-1])
        wanted = {0, last}
        if last > 0:
            points = np.unique(np.round(np.geomspace(1, last, rows)))
            kept = history.epoch[np.searchsorted(history.epoch, points)]
            wanted |= {int(e) for e in kept}
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
        self,
        features: Sequence[str],
        targets: Sequence[str],
        learned: tuple[np.ndarray, np.ndarray],
        optimum: tuple[np.ndarray, np.ndarray],
    ) -> None:
        """The learned W and w0 beside the least-squares ones, weight by weight."""
        (W, bias), (W_opt, b_opt) = learned, optimum
        table = Table(
            title="Weights, learned and least squares (data's own units)", title_justify="left"
        )
        table.add_column("feature")
        for t in targets:
            name = t if len(targets) > 1 else ""
            table.add_column(f"{name} learned".strip(), justify="right")
            table.add_column(f"{name} least squares".strip(), justify="right")
        for i, f in enumerate(features):
            cells = [c for j in range(len(targets)) for c in (W[i, j], W_opt[i, j])]
            table.add_row(f, *(fmt(float(c), 8) for c in cells))
        cells = [c for j in range(len(targets)) for c in (bias[j], b_opt[j])]
        table.add_row("(bias)", *(fmt(float(c), 8) for c in cells), style="italic")
        self.print(table)


def stop_message(run: RunEnd, tol: float, patience: int) -> str:
    """Why training stopped, in words."""
    reason = run.stop_reason
    if reason == "max_epochs":
        return f"ran all {run.epochs_run} epochs asked for"
    if reason == "tol":
        return (
            f"the --tol rule: training loss improved by less than {tol:g} (relative) for "
            f"{patience} epochs"
        )
    if reason == "early_stopping":
        return (
            f"validation loss improved by less than {tol:g} (relative) for {patience} epochs; "
            f"kept the weights of epoch {run.best_epoch}"
        )
    if reason == "interrupted":
        return f"interrupted (Ctrl-C) during epoch {run.epochs_run + 1}"
    if reason == "gap_tol":
        return f"(L − L*)/L* fell to --gap-tol at epoch {run.epochs_run}: converged, as asked"
    return f"the divergence rule, at epoch {run.diverged_epoch} ({run.diverged_by})"


def plan_in_words(plan: Plan, features: Sequence[str], gap_tol: float) -> list[str]:
    """What babynn chose for the run, in words: the rate when none was given, the epochs when it
    runs until converged, and why a run may not get there."""
    lines = []
    if plan.lr_rule == "theory":
        lines.append(
            f"η = {fmt(plan.lr, 4)}, the fastest constant rate for this data (η* = 2/(λmax+λmin), "
            "rounded down); pass --lr to choose your own"
        )
    elif plan.lr_rule == "sweep" and plan.probe is not None:
        rates, epochs = plan.probe.rates, plan.probe.epochs
        lines.append(
            f"η = {fmt(plan.lr, 4)}, picked by a short sweep: {len(rates)} rates from "
            f"{fmt(rates[0], 3)} to {fmt(rates[-1], 3)}, {epochs} epoch{'s' * (epochs != 1)} "
            "each, the one that came lowest fastest; pass --lr to choose your own"
        )
    if plan.until_converged:
        if plan.predicted is not None:
            predicted = f"theory predicts {plan.predicted:,} at this rate"
        elif plan.lr_rule == "given" or plan.ill is None:
            predicted = f"theory predicts more than {MAX_EPOCHS:,} at this rate"
        else:
            predicted = f"theory predicts more than {MAX_EPOCHS:,} even at the fastest rate"
        lines.append(
            f"epochs: until (L − L*)/L* ≤ {gap_tol:g} (--gap-tol); {predicted} (at most "
            f"{plan.epochs:,}; pass --epochs to fix the number)"
        )
    if plan.ill is not None:
        lines.append(ill_conditioned_in_words(plan.ill, features))
    return lines


def ill_conditioned_in_words(ill: IllConditioned, features: Sequence[str]) -> str:
    """Why the data needs more epochs than a run until converged may take, and what helps."""
    helps = []
    if not ill.standardized:
        helps.append("standardising the features (drop --no-standardize)")
    if ill.pair is not None and abs(ill.correlation) > 0.9:
        a, b = (features[i] for i in ill.pair)
        helps.append(
            f"dropping one of {a!r} and {b!r}, nearly a copy of each other (correlation "
            f"{ill.correlation:.6g})"
        )
    advice = "; or ".join(helps) if helps else "fewer, or less correlated, features"
    return (
        f"this data is ill-conditioned (κ = {fmt(ill.condition_number, 3)}): even the fastest "
        f"constant rate needs more than {MAX_EPOCHS:,} epochs to come within --gap-tol of L*; "
        f"what would help: {advice}"
    )


def theory_in_words(c: Curvature) -> str:
    """What the Hessian's eigenvalues mean for this run's rates, in one line."""
    kappa = c.condition_number
    slow = (
        f"κ = λmax/λmin = {fmt(kappa, 3)}: the slowest direction of the weights learns "
        f"{fmt(kappa, 3)}× slower than the fastest"
        if kappa > 1.5
        else f"κ = {fmt(kappa, 3)}: every direction learns about as fast"
    )
    return (
        f"theory of full-batch descent on this data (H = (2/N) X̃ᵀX̃, the loss's curvature): "
        f"constant rates above {fmt(c.stable_lr, 4)} (2/λmax) make the loss grow; "
        f"{fmt(c.suggested_lr, 4)} (η* = 2/(λmax+λmin)) is the fastest; {slow}"
    )


def verdict_cell(verdict: Verdict, epoch: int) -> str:
    """A verdict in a table cell: the word, and where a diverged run stopped."""
    return f"diverged at epoch {epoch}" if verdict is Verdict.DIVERGED else verdict.value


def stable_rate_hint(problem: Problem, batch_size: int | None, lr: float) -> str:
    """What rate would be stable, after a run that diverged or went unstable."""
    smaller = fmt(lr / 10, 3)  # an order of magnitude down
    if not problem.affine:
        return (
            f"try a smaller --lr, e.g. {smaller}, or let babynn sweep-lr find one (2/λmax is the "
            "affine model's bound, not a network's)"
        )
    curvature = problem.curvature()
    bound = fmt(curvature.stable_lr, 4)
    text = f"full-batch gradient descent on this data is stable below {bound} (2/λmax)"
    if batch_size is not None and batch_size < problem.n_train:
        smaller = fmt(min(lr / 10, curvature.suggested_lr), 3)
        return (
            f"{text}, and --batch-size {batch_size} needs a smaller rate still: try --lr "
            f"{smaller}, or let babynn sweep-lr --batch-size {batch_size} find one"
        )
    return f"{text}, e.g. --lr {fmt(curvature.suggested_lr)}"


def _gap_words(j: Judgement) -> str:
    if j.optimum_loss is None:
        return f"loss {fmt(j.final_loss, 6)}"
    if j.gap_scale is None or j.gap_scale == j.optimum_loss:
        return f"(L − L*)/L* = {fmt(j.relative_gap, 3)}"
    return (
        f"(L − L*)/var(y) = {fmt(j.relative_gap, 3)} (L* is 0 to rounding: an exact fit, so "
        "the gap is measured against the targets' variance)"
    )


def what_happened(fitted: Fitted, gap_tol: float, patience: int) -> str:
    """The verdict in a sentence, with this run's numbers."""
    j, end = fitted.judgement, fitted.end
    best = f"its best {fmt(j.best_loss, 6)} at epoch {j.best_epoch}"
    if j.best_epoch == 0:
        best = f"where it started ({fmt(j.best_loss, 6)}), its best"
    if j.verdict is Verdict.CONVERGED:
        if j.optimum_loss is None:
            return f"converged: the loss settled at {fmt(j.final_loss, 8)} by epoch {j.final_epoch}"
        return f"converged: {_gap_words(j)} ≤ {gap_tol:g} (--gap-tol) at epoch {j.final_epoch}"
    if j.verdict is Verdict.STILL_FALLING:
        return f"still falling: {_gap_words(j)} after {j.final_epoch} epochs"
    if j.verdict is Verdict.PLATEAU:
        above = 100 * (j.final_loss / j.best_loss - 1)
        return (
            f"plateau: {_gap_words(j)} after {j.final_epoch} epochs, the loss "
            f"{fmt(above, 2)} % above {best}: it no longer falls"
        )
    if j.verdict is Verdict.UNSTABLE:
        return (
            f"unstable: the loss ended at {fmt(j.final_loss, 6)} after {j.final_epoch} epochs, "
            f"{fmt(j.final_loss / j.best_loss, 3)}× {best}"
        )
    e, L, L0 = j.final_epoch, fmt(j.final_loss, 6), fmt(j.initial_loss, 6)
    at = f" at epoch {e} with learning rate {fmt(end.diverged_lr)}" if end.diverged_lr else ""
    rule = end.diverged_by
    if rule is DivergenceRule.NOT_FINITE:
        became = "NaN (not a number)" if math.isnan(j.final_loss) else "infinity"
        why = f"the loss overflowed to {became} at epoch {e}"
    elif rule is DivergenceRule.FAR_ABOVE_START:
        why = f"the loss grew to {L} at epoch {e}, more than 10⁴ times where it started ({L0})"
    elif rule is DivergenceRule.STEADY_RISE:
        why = (
            f"the loss rose in each of {patience} epochs in a row, to {L} at epoch {e} from "
            f"{best} (at full batch a stable rate never raises the loss)"
        )
    elif rule is DivergenceRule.BLOW_UP:
        why = f"the loss rose to {L} at epoch {e}, {fmt(j.final_loss / j.best_loss, 3)}× {best}"
        if j.best_epoch > 0:
            why += f", and above where it started ({L0})"
    else:
        L, L0 = _apart(j.final_loss, j.initial_loss)
        why = f"the loss ended at {L} after {e} epochs, above where it started ({L0})"
    return f"diverged{at}: {why}"


def _apart(a: float, b: float) -> tuple[str, str]:
    """a and b with enough digits (6 at least) to tell them apart."""
    for digits in range(6, 18):
        if fmt(a, digits) != fmt(b, digits):
            break
    return fmt(a, digits), fmt(b, digits)


def next_step(
    fitted: Fitted, problem: Problem, advice: Advice, batch_size: int | None, lr: float
) -> str | None:
    """What to try after a run that did not converge, with numbers from this run."""
    j, end = fitted.judgement, fitted.end
    last_lr = float(fitted.history.lr[-1, 0]) if len(fitted.history.lr) > 1 else lr
    if j.verdict is Verdict.CONVERGED:
        return None
    if j.verdict.failed:
        return stable_rate_hint(problem, batch_size, last_lr)
    if j.verdict is Verdict.PLATEAU:
        return (
            f"the noise of stochastic descent at η = {fmt(last_lr, 4)} keeps it there; a decaying "
            "schedule (e.g. --schedule inverse) or a smaller --lr lowers the floor"
        )
    if end.stop_reason is StopReason.EARLY_STOPPING:
        return (
            f"early stopping kept epoch {end.weights_epoch}, the best validation loss; the "
            "training loss was still falling there, as it does when validation stops improving"
        )
    E = j.final_epoch
    tol = " --tol 0" if end.stop_reason is StopReason.TOL else ""
    faster = ""
    if advice.best_lr is not None and advice.best_lr_epochs is not None:
        how = "" if advice.more_epochs is not None else "full-batch descent (no --batch-size) at "
        faster = f", or {how}--lr {fmt(advice.best_lr, 4)} gets there in {advice.best_lr_epochs}"
    rates = fitted.history.lr[1:, 0]
    if advice.more_epochs is not None and np.all(rates == rates[0]):  # a constant rate
        return (
            f"about {advice.more_epochs} more epochs at η = {fmt(last_lr, 4)} "
            f"(--epochs {E + advice.more_epochs}{tol}){faster}"
        )
    if advice.more_epochs is not None:  # a decaying rate: hold its last value from here
        return (
            f"about {advice.more_epochs} more epochs at η = {fmt(last_lr, 4)} held constant "
            f"(--warm-start from this model with --lr {fmt(last_lr, 10)} --epochs "
            f"{advice.more_epochs}{tol}){faster}"
        )
    return f"more epochs (e.g. --epochs {2 * max(E, 1)}{tol}){faster}"


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
    output: str | None,
) -> dict[str, Any]:
    """What `fit --json` prints: the model, how the run went, its history. `output`: the model
    file written (None when none was)."""
    doc: dict[str, Any] = {
        "model_file": None if output is None else str(output),
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
    history = records(history_columns(fitted.history))
    return (
        doc
        | result
        | {"schedule": schedule, "history_kept": fitted.history.kept, "history": history}
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
