"""babynn's sentences: what a run is, how the data was read, why a run stopped, what theory says,
each with the run's own numbers (what happened and what to try next: `report.advice`). Plain text
(no Rich): the report modules print it, `--json` quotes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from babynn_cli.core.choices import MAX_EPOCHS
from babynn_cli.core.verdict import Verdict

if TYPE_CHECKING:
    from babynn_cli.core.auto import IllConditioned, Plan
    from babynn_cli.core.mlp import MLP
    from babynn_cli.core.problem import Problem
    from babynn_cli.core.schedules import Schedule
    from babynn_cli.core.stopping import RunEnd
    from babynn_cli.core.theory import Curvature
    from babynn_cli.data.columns import Reading

# A category with more levels than this, and fewer than MANY_LEVELS_ROWS rows a level on average,
# looks like an id: the header says so, and how to leave it out
MANY_LEVELS = 20
MANY_LEVELS_ROWS = 5


def fmt(x: float | None, digits: int = 6) -> str:
    """A number for a table: significant digits, '-' for missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}"


def streamed_note(problem: Problem) -> str:
    """What a header says of rows that were never in memory whole."""
    return " (streamed: read in blocks, never whole)" if problem.train.streamed else ""


def reading_in_words(reading: Reading, rows: int) -> list[str]:
    """What reading DATA did to its columns and rows, a line each (nothing for a plain table)."""
    from babynn_cli.core.encoding import MISSING

    lines = []
    if reading.classes is not None:
        classes = reading.classes
        shown = ", ".join(classes[:12]) + (f", … ({len(classes)})" if len(classes) > 12 else "")
        how = (
            f"logistic regression: one output, the probability of '{classes[1]}'"
            if len(classes) == 2
            else f"softmax over {len(classes)} outputs, one probability a class"
        )
        lines.append(f"the target holds classes, {shown}: the loss is cross-entropy ({how})")
    columns = reading.encoding.columns if reading.encoding is not None else ()
    categories = [c for c in columns if c.kind == "category"]
    if categories:
        levels = ", ".join(f"{c.name} {len(c.levels)}" for c in categories)
        lines.append(
            f"categories, one indicator feature per level (column=level; a column's indicators "
            f"sum to 1, a level never seen here makes them all 0), levels: {levels}"
        )
    for c in categories:
        if len(c.levels) > max(MANY_LEVELS, rows / MANY_LEVELS_ROWS):
            lines.append(
                f"column '{c.name}' has {len(c.levels):,} levels in {rows:,} rows, few rows each "
                f"(an id?): --id '{c.name}' or --exclude '{c.name}' leaves it out of the features"
            )
    for kind, how in (("date", "dates as fractional years (2024-07-02 00:00 UTC is 2024.5)"),
                      ("boolean", "true/false as 1/0")):  # fmt: skip
        named = [c.name for c in columns if c.kind == kind]
        if named:
            lines.append(f"{how}: {', '.join(named)}")
    if reading.filled:
        fills = {c.name: c for c in columns}
        said = []
        for name, count in reading.filled.items():
            c = fills[name]
            value = f"'{MISSING}'" if c.kind == "category" else f"the mean {fmt(c.fill, 6)}"
            said.append(f"{name} {count:,} (with {value})")
        total = sum(reading.filled.values())
        lines.append(f"--impute filled {total:,} missing cell(s): {', '.join(said)}")
    if reading.dropped:
        lines.append(f"--dropna dropped {reading.dropped:,} row(s) with a missing cell")
    if reading.unseen:
        cells = ", ".join(f"{name} {n:,}" for name, n in reading.unseen.items())
        lines.append(
            f"cells holding a category the --warm-start model never saw, read as none of its "
            f"levels: {cells}"
        )
    if reading.ids:
        lines.append(
            f"id column(s), not features (predict writes them first): {', '.join(reading.ids)}"
        )
    if reading.ignored:
        names = ", ".join(f"'{c}'" for c in reading.ignored)
        lines.append(f"left out: {names}, with no name in the header (a saved index)")
    return lines


def run_header(
    source: str,
    features: Sequence[str],
    targets: Sequence[str],
    problem: Problem,
    schedule: Schedule,
    batch_size: int | None,
    schedule_text: str | None = None,
    plan: Plan | None = None,
    gap_tol: float = 1e-6,
    chose: Chose | None = None,
) -> list[str]:
    """What is about to run, a line each: the data, the method, what theory says of the rate,
    and what babynn chose for the user (`plan`)."""
    from babynn_cli.core.schedules import describe

    lines = []
    name = "standard input" if source == "-" else source
    val = f", {problem.n_val} held out for validation" if problem.n_val else ""
    lines.append(
        f"{name}{streamed_note(problem)}: {problem.n_train} training rows{val}; "
        f"{len(features)} feature(s) → {', '.join(targets)}"
    )
    if problem.full_batch(batch_size):
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
        lines.append(f"network: {shape} ({act} after each hidden layer), {params} parameters")
    if plan is not None and not plan.optimizer.plain:
        method = f"{method} by {plan.optimizer.describe()}"
    lines.append(f"method: {method} on {scaled}; {schedule_text or describe(schedule)}")
    if not problem.full_batch(batch_size):
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
        lines.append(
            f"the notes' conditions for stochastic descent: Σ η(t) = ∞ "
            f"{_mark(c.sum_diverges)}, Σ η(t)² < ∞ {_mark(c.sum_of_squares_converges)}: " + meaning
        )
    if problem.separable:
        lines.append(separable_in_words())
    if problem.affine and problem.curvature().singular and not problem.separable:
        lines.append(
            "the features are collinear (H = (2/N) X̃ᵀX̃ is singular): the optimum is not "
            "unique, many weights reach the same L*; training starts with the reference's "
            "part along the directions that change nothing (no gradient moves it), so it ends at "
            "the reference, the one of least norm; λmin is H's smallest non-zero eigenvalue"
        )
    if problem.affine and schedule_text is None:
        lines.append(theory_in_words(problem.curvature(), problem.has_optimum))
    if plan is not None:
        lines += plan_in_words(plan, features, gap_tol, problem, chose)
    return lines


def compare_header(source: str, problem: Problem, configs: int, saved: int) -> str:
    """What compare is about to do, in one line."""
    name = "standard input" if source == "-" else f"'{source}'"
    what = [f"{configs} configuration(s)"] if configs else []
    what += [f"{saved} saved model(s)"] if saved else []
    held = f", {problem.n_val} held out for validation" if problem.n_val else ""
    against = "the ridge optimum (--l2)" if problem.model.l2 else "the least-squares optimum"
    if problem.classifies:
        against = "the cross-entropy optimum" if problem.reference_exists else "each other"
    return (
        f"{name}{streamed_note(problem)}: {problem.n_train} training rows{held}; "
        f"{' and '.join(what)} against {against}" + ("" if configs else " (nothing trained)")
    )


def metrics_sentence(mse: float, r2: Sequence[float], targets: Sequence[str]) -> str:
    """The loss and R² of predictions, in one line."""
    r2_text = ", ".join(f"{t} {fmt(v, 4)}" for t, v in zip(targets, r2, strict=True))
    if len(targets) == 1:
        return f"MSE {fmt(mse, 8)}  R² {r2_text}"
    # babynn's loss sums over outputs; scikit-learn's MSE averages over them
    per = fmt(mse / len(targets), 8)
    return (
        f"MSE {fmt(mse, 8)} summed over the {len(targets)} outputs (the notes' loss; "
        f"{per} averaged over them, as scikit-learn reports it)  R² {r2_text}"
    )


def stop_message(run: RunEnd, tol: float, patience: int, stopped_by: str = "Ctrl-C") -> str:
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
        return f"interrupted ({stopped_by}) during epoch {run.epochs_run + 1}"
    if reason == "gap_tol":
        return f"(L − L*)/L* fell to --gap-tol at epoch {run.epochs_run}: converged, as asked"
    return f"the divergence rule, at epoch {run.diverged_epoch} ({run.diverged_by})"


def plan_in_words(
    plan: Plan,
    features: Sequence[str],
    gap_tol: float,
    problem: Problem | None = None,
    chose: Chose | None = None,
) -> list[str]:
    """What babynn chose for the run, in words: the batch size and the validation split (`chose`
    says which were babynn's), the rate when none was given, the epochs and the rule that stops
    the run when none was given, and why a run may not get there."""
    lines = []
    if chose is not None and problem is not None:
        lines += _choices_in_words(plan, problem, chose)
    bounded = problem is not None and problem.classifies  # cross-entropy: a bound, an estimate
    if plan.lr_rule == "theory" and bounded:
        assert problem is not None
        curvature = problem.curvature()
        why = (
            f"the largest constant rate that never makes the loss rise from any weights (2/bound, "
            f"rounded down; η* = 2/(λmax*+λmin*) = {fmt(curvature.best_lr, 4)} at the optimum "
            "holds only near it)"
            if curvature.best_lr > curvature.stable_lr
            else "η* = 2/(λmax*+λmin*) at the optimum, rounded down, below the bound that holds "
            "for any weights"
        )
        lines.append(f"η = {fmt(plan.lr, 4)}, {why}; pass --lr to choose your own")
    elif plan.lr_rule == "theory" and plan.optimizer.heavy:
        lines.append(_momentum_choice_in_words(plan))
    elif plan.lr_rule == "theory":
        lines.append(
            f"η = {fmt(plan.lr, 4)}, η* = 2/(λmax+λmin) rounded down: the constant rate with the "
            "best worst-case contraction per epoch (its slowest direction shrinks fastest); pass "
            "--lr to choose your own"
        )
    elif plan.lr_rule == "sweep" and plan.probe is not None:
        rates, epochs = plan.probe.rates, plan.probe.epochs
        steady = "" if plan.optimizer.heavy else "of the steady rates "  # momentum's rise
        lines.append(
            f"η = {fmt(plan.lr, 4)}, picked by a short sweep: {len(rates)} rates from "
            f"{fmt(rates[0], 3)} to {fmt(rates[-1], 3)}, {epochs} epoch{'s' * (epochs != 1)} "
            f"each under this run's rules, read as sweep-lr reads its grid ({steady}below the "
            "divergence edge, the lowest loss); pass --lr to choose your own"
        )
    if plan.until_converged and plan.optimizer.heavy and problem is not None:
        rule = plan.optimizer
        nesterov = rule.name == "nesterov"
        edge = problem.curvature().momentum_stable_lr(rule.beta, nesterov)
        bound = "2(1+β)/(1+2β)λmax" if nesterov else "2(1+β)/λmax"
        if plan.lr >= edge:
            predicted = (
                f"it never gets there: at this rate, at or above {bound} = {fmt(edge, 4)} for "
                f"β = {fmt(rule.beta, 4)}, the error along λmax's direction grows every epoch, so "
                "the loss diverges"
            )
        elif plan.predicted is not None:
            predicted = (
                f"theory predicts {plan.predicted:,} at this rate and β (the loss may rise before "
                "it falls: the velocity overshoots)"
            )
        else:
            predicted = f"theory predicts more than {MAX_EPOCHS:,} at this rate and β"
        lines.append(
            f"epochs: until (L − L*)/L* ≤ {gap_tol:g} (--gap-tol); {predicted} "
            f"(at most {plan.epochs:,})"
        )
    elif plan.until_converged:
        exact = problem is not None and not bounded and problem.curvature().exact
        edge = problem.curvature().stable_lr if problem is not None and exact else math.inf
        at_edge = math.isclose(plan.lr, edge, rel_tol=1e-9)
        if at_edge:  # squared error at full batch: H is constant, nothing to guess
            predicted = (
                f"it never gets there: at exactly 2/λmax = {fmt(edge, 4)} the weights' error "
                "along λmax's direction flips sign every epoch and never shrinks, so the loss "
                "stops above L*"
            )
        elif plan.lr > edge:
            predicted = (
                f"it never gets there: at this rate, above 2/λmax = {fmt(edge, 4)}, the weights' "
                "error along λmax's direction grows every epoch, so the loss diverges"
            )
        elif plan.predicted is not None and bounded:
            predicted = f"the curvature at the optimum estimates {plan.predicted:,} at this rate"
        elif plan.predicted is not None:
            predicted = f"theory predicts {plan.predicted:,} at this rate"
        elif plan.beyond is not None:
            predicted = (
                f"theory predicts {plan.beyond:,} at this rate, more than babynn runs unasked "
                f"({MAX_EPOCHS:,}): this run looks at the first {plan.epochs:,} (pass --epochs "
                f"{plan.beyond} to run them all, or leave out --lr for η*)"
            )
        elif plan.lr_rule == "given" or plan.ill is None:
            predicted = f"theory predicts more than {MAX_EPOCHS:,} at this rate"
        else:
            predicted = f"theory predicts more than {MAX_EPOCHS:,} even at η*"
        limit = (
            ""
            if plan.beyond is not None
            else f" (at most {plan.epochs:,}; pass --epochs to fix the number)"
        )
        if plan.lr > edge or at_edge:
            limit = f" (at most {plan.epochs:,})"
        lines.append(f"epochs: until (L − L*)/L* ≤ {gap_tol:g} (--gap-tol); {predicted}{limit}")
    if plan.ill is not None:
        lines.append(ill_conditioned_in_words(plan.ill, features))
    return lines


@dataclass(frozen=True)
class Chose:
    """Which of a run's settings babynn chose (the user gave the others)."""

    batch_size: bool = False
    split: bool = False
    epochs: bool = False


def _choices_in_words(plan: Plan, problem: Problem, chose: Chose) -> list[str]:
    """The batch size, the validation split and the stopping rule, when babynn chose them."""
    lines = []
    if chose.batch_size and not problem.affine:
        lines.append(
            "a network trains by minibatch descent, as the notes train it (--batch-size full for "
            "gradient descent on every row)"
        )
    if not chose.epochs or plan.until_converged:
        return lines
    on, kept = "the training loss", ""
    if plan.early_stopping:
        held = f"the {problem.n_val} rows held out"
        if chose.split:
            held += ": --val-frac 0 trains on every row"
        on, kept = f"the validation loss ({held})", ", keeping the best epoch's weights"
    patience = f"{plan.patience} epochs"
    if plan.patience_share:
        patience += f" (or {plan.patience_share:.0%} of the epochs run when that is more)"
    goal = ""
    if plan.target_loss is not None:
        goal = f"once (L − L*)/L* ≤ {_gap_tol_words(problem, plan)} (--gap-tol), or "
    lines.append(
        f"epochs: at most {plan.epochs:,}, stopping {goal}when {on} makes no new best by more "
        f"than {plan.tol:g}{_spread_words(problem) * plan.tol_of_spread} for {patience}"
        f"{kept}; pass --epochs to run a fixed number"
    )
    return lines


def _spread_words(problem: Problem) -> str:
    """What a loss is measured against, said after a number: the targets' variance, or the
    classes' entropy (the loss of predicting each class's frequency)."""
    return " of the classes' entropy" if problem.classifies else " of the targets' variance"


def _gap_tol_words(problem: Problem, plan: Plan) -> str:
    """The relative gap a goal loss stands for."""
    assert plan.target_loss is not None
    return fmt((plan.target_loss - problem.optimum_loss) / problem.gap_scale, 3)


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
        f"this data is ill-conditioned (κ = {fmt(ill.condition_number, 3)}): even η* "
        f"= 2/(λmax+λmin) needs more than {MAX_EPOCHS:,} epochs to come within --gap-tol of L*; "
        f"what would help: {advice}"
    )


def separable_in_words() -> str:
    """Why a classifier on separable classes has no optimum, and the way to one."""
    return (
        "the classes are separable (a hyperplane puts the rows of a class, or of every class, "
        "on their own side): cross-entropy has no minimum, it falls toward its floor only as the "
        "weights grow without bound, so no run converges to a finite optimum and no L* is "
        "shown; --l2 ALPHA gives the loss one"
    )


def _momentum_choice_in_words(plan: Plan) -> str:
    """Why momentum's rate and β are what theory chose (`core.auto.momentum_choice`)."""
    rule, lr = plan.optimizer, fmt(plan.lr, 4)
    beta = fmt(rule.beta, 4)
    if rule.name == "nesterov":
        why = "η = 1/λmax rounded down (the step of a loss whose curvature is at most λmax)"
        return f"η = {lr}, {why}, with β = {beta}; pass --lr to choose your own"
    if plan.optimizer_chose_beta:
        return (
            f"η = {lr}, β = {beta}: Polyak's optimal pair, η = 4/(√λmax+√λmin)² (rounded down) "
            "and β = ((√κ−1)/(√κ+1))², whose error contracts by (√κ−1)/(√κ+1) an epoch where "
            "plain descent's at η* contracts by (κ−1)/(κ+1); pass --lr to choose your own"
        )
    return (
        f"η = {lr}, (1+√β)²/λmax rounded down for β = {beta}: the largest rate at which λmax's "
        "direction still contracts by √β an epoch; pass --lr to choose your own"
    )


def theory_in_words(c: Curvature, has_optimum: bool = True) -> str:
    """What the Hessian's eigenvalues mean for this run's rates, in one line."""
    if not c.exact:
        return _bound_in_words(c, has_optimum)
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
        f"{fmt(c.suggested_lr, 4)} (η* = 2/(λmax+λmin)) has the best worst-case contraction "
        f"per epoch, (κ−1)/(κ+1); {slow}"
    )


def _bound_in_words(c: Curvature, has_optimum: bool) -> str:
    """Cross-entropy's theory: a bound that holds for any weights, and the exact curvature at
    the optimum, said apart."""
    bound = (
        f"theory of full-batch descent for cross-entropy (its curvature changes with the "
        f"weights): constant rates below {fmt(c.stable_lr, 4)} never make the loss rise, from "
        f"any weights (a bound: ℓ'' ≤ ¼ for two classes, ½ for more, times X̃ᵀX̃/N's λmax, plus "
        f"2α with --l2)"
    )
    if not has_optimum:
        return bound
    kappa = c.condition_number
    return (
        f"{bound}; at the optimum the Hessian gives η* = 2/(λmax*+λmin*) = "
        f"{fmt(c.best_lr, 4)} and κ* = {fmt(kappa, 3)}, exact near it (epochs predicted from "
        f"there are an estimate)"
    )


def verdict_cell(verdict: Verdict, epoch: int) -> str:
    """A verdict in a table cell: the word, and where a diverged run stopped."""
    return f"diverged at epoch {epoch}" if verdict is Verdict.DIVERGED else verdict.value


def _mark(ok: bool) -> str:
    return "yes" if ok else "no"


def percent(share: float) -> str:
    """A share as a percentage, to a tenth, never rounded up to 100 % (nor down to 0 %)."""
    value = 100.0 * share
    text = f"{value:.1f} %"
    if text == "100.0 %" and share < 1:
        return "99.9 %"
    if text == "0.0 %" and share > 0:
        return "0.1 %"
    return text


def output_names(targets: Sequence[str], classes: Sequence[str] | None) -> list[str]:
    """The model's outputs by name: the targets, or a classifier's: `target=class` for each
    class (softmax), for the second class alone (logistic: its output is that class's logit)."""
    if classes is None:
        return list(targets)
    shown = classes[1:] if len(classes) == 2 else classes
    return [f"{targets[0]}={c}" for c in shown]


def per_target(targets: Sequence[str], values: Sequence[float] | np.ndarray) -> str:
    if len(targets) == 1:
        return fmt(float(values[0]), 6)
    return ", ".join(f"{t} {fmt(float(v), 6)}" for t, v in zip(targets, values, strict=True))
