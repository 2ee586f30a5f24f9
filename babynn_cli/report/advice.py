"""What happened to a run and what to try next, in words, with the run's own numbers: the
verdict's sentence (`what_happened`), the next step (`next_step`: only what applies, computed from
theory wherever theory can), the stable rate after a divergence, and a word on a converged line
that explains little. Plain text, as `report.words`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from babynn_cli.core.stopping import DivergenceRule, StopReason
from babynn_cli.core.verdict import Verdict
from babynn_cli.report.words import fmt, percent

if TYPE_CHECKING:
    from babynn_cli.core.auto import Plan
    from babynn_cli.core.fitted import Fitted
    from babynn_cli.core.optimizers import OptimizerSpec
    from babynn_cli.core.problem import Problem
    from babynn_cli.core.verdict import Advice, Judgement


def stable_rate_hint(
    problem: Problem, batch_size: int | None, lr: float, optimizer: OptimizerSpec | None = None
) -> str:
    """What rate would be stable, after a run that diverged or went unstable (with momentum at
    full batch, its own bound for its β)."""
    smaller = fmt(lr / 10, 3)  # an order of magnitude down
    heavy = optimizer is not None and optimizer.heavy
    if heavy and problem.has_optimum and not problem.classifies and problem.full_batch(batch_size):
        assert optimizer is not None
        nesterov = optimizer.name == "nesterov"
        edge = problem.curvature().momentum_stable_lr(optimizer.beta, nesterov)
        formula = "2(1+β)/((1+2β)λmax)" if nesterov else "2(1+β)/λmax"
        return (
            f"{optimizer.name} with β = {fmt(optimizer.beta, 4)} is stable on this data below "
            f"{fmt(edge, 4)} ({formula}); leave out --lr for theory's rate and β"
        )
    if optimizer is not None and not optimizer.plain:
        return f"try a smaller --lr, e.g. {smaller}, or leave it out for babynn's choice"
    if not problem.affine:
        return (
            f"try a smaller --lr, e.g. {smaller}, or let babynn sweep-lr find one (2/λmax is the "
            "affine model's bound, not a network's)"
        )
    curvature = problem.curvature()
    bound = fmt(curvature.stable_lr, 4)
    text = f"full-batch gradient descent on this data is stable below {bound} (2/λmax)"
    if not problem.full_batch(batch_size):
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
        if j.no_minimum:
            return (
                f"still falling: loss {fmt(j.final_loss, 6)} after {j.final_epoch} epochs, as it "
                "always will: the classes are separable, the loss has no minimum to converge to"
            )
        return f"still falling: {_gap_words(j)} after {j.final_epoch} epochs"
    if j.verdict is Verdict.PLATEAU:
        if end.stop_reason in (StopReason.TOL, StopReason.EARLY_STOPPING):
            return (
                f"plateau: {_gap_words(j)} after {j.final_epoch} epochs, short of L*: the "
                "plateau rule stopped it, the loss no longer improving"
            )
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
    fitted: Fitted, problem: Problem, advice: Advice, batch_size: int | None, plan: Plan
) -> str | None:
    """What to try after a run that did not converge, with numbers from this run; only what
    applies to it (no schedule it already uses, no noise where there is no stochastic descent)."""
    j, end = fitted.judgement, fitted.end
    last_lr = float(fitted.history.lr[-1, 0]) if len(fitted.history.lr) > 1 else plan.lr
    rates = fitted.history.lr[1:, 0]
    constant = bool(np.all(rates == rates[0])) if len(rates) else True
    E = j.final_epoch
    if j.verdict is Verdict.CONVERGED:
        return None
    if j.verdict.failed:
        return stable_rate_hint(problem, batch_size, last_lr, plan.optimizer)
    if j.no_minimum:
        return (
            "the weights only grow with more epochs; --l2 ALPHA gives the loss a minimum to "
            "converge to (scikit-learn's LogisticRegression() on standardised features is --l2 "
            "1/(2N) = "
            f"{fmt(1 / (2 * problem.n_train), 3)} here)"
        )
    if j.verdict is Verdict.PLATEAU:
        return _plateau_step(problem, batch_size, last_lr, constant, E)
    if end.stop_reason is StopReason.EARLY_STOPPING:
        return (
            f"early stopping kept epoch {end.weights_epoch}, the best validation loss; the "
            "training loss was still falling there, as it does when validation stops improving"
        )
    tol = " --tol 0" if end.stop_reason is StopReason.TOL else ""
    if not (problem.affine and problem.full_batch(batch_size)) and plan.tol > 0:
        # a fixed number of epochs runs with no rule: ask for the one this run stopped by
        tol = f" --tol {plan.tol:g}" + (" --early-stopping" if plan.early_stopping else "")
    faster = ""
    quicker = advice.more_epochs is None or (
        advice.best_lr_epochs is not None and advice.best_lr_epochs < advice.more_epochs
    )  # a restart at η* is offered only when the exact prediction says it gets there sooner
    if advice.best_lr is not None and advice.best_lr_epochs is not None and quicker:
        how = "" if problem.full_batch(batch_size) else "full-batch descent (--batch-size full) at "
        faster = f", or {how}--lr {fmt(advice.best_lr, 4)} gets there in {advice.best_lr_epochs}"
    if advice.more_epochs is not None and constant:
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
    return f"more epochs (e.g. --epochs {2 * max(end.epochs_run, 1)}{tol}){faster}"


WEAK_R2 = 0.5  # below this, a converged line is said to explain little


def weak_fit_words(fitted: Fitted, problem: Problem) -> str | None:
    """For the affine model that converged on squared error but explains little of the targets'
    variance: that the optimum itself is a poor line, and what may follow the data."""
    if not (problem.affine and not problem.classifies and fitted.verdict is Verdict.CONVERGED):
        return None
    r2 = float(np.min(fitted.train_r2)) if len(fitted.train_r2) else 1.0
    if r2 >= WEAK_R2:
        return None
    return (
        f"the optimum itself is a poor line: it explains {percent(max(r2, 0.0))} of the targets' "
        f"variance (R² {fmt(r2, 3)}); if they follow the features in a curve, a network "
        "(--hidden 32) may follow it"
    )


def _plateau_step(
    problem: Problem, batch_size: int | None, lr: float, constant: bool, epochs: int
) -> str:
    """What lowers a plateau: for stochastic descent, less noise (a decaying rate, where the rate
    does not decay yet; a smaller rate; larger batches); at full batch, a smaller rate."""
    eta = f"η = {fmt(lr, 4)}"
    if problem.full_batch(batch_size) and problem.affine and not problem.classifies:
        curvature = problem.curvature()
        if math.isclose(lr, curvature.stable_lr, rel_tol=1e-9):
            return (
                f"at exactly 2/λmax = {fmt(lr, 4)} the error along λmax's direction never "
                f"shrinks, however long it runs; any smaller rate converges: --lr "
                f"{fmt(curvature.suggested_lr, 4)} (η*)"
            )
    if problem.full_batch(batch_size):
        return (
            f"full-batch descent at {eta} no longer lowers the loss: a smaller --lr may (the "
            "weights can bounce across a narrow valley), or minibatches, whose noise moves on"
        )
    if constant:
        return (
            f"the noise of stochastic descent at {eta} keeps it there; a decaying schedule "
            "(e.g. --schedule inverse), a smaller --lr or a larger --batch-size lowers the floor"
        )
    return (
        f"the noise of stochastic descent keeps it there: the rate still decays ({eta} at the "
        f"last epoch), so more epochs lower the floor (e.g. --epochs {2 * max(epochs, 1)}), and "
        "so does a larger --batch-size"
    )
