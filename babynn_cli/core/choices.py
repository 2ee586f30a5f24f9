"""The choices babynn offers, declared once: the core builds from them, the command line offers
them and its help prints them. Plain Python, so that `babynn --help` starts without numpy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduleChoice:
    """A learning-rate schedule: its name, η(t) in the symbols of `SYMBOLS` (t counts updates
    from 0), and the parameters it reads besides η0."""

    name: str
    formula: str
    parameters: tuple[str, ...] = ()


# The schedule parameters' symbols in the formulas, by option name (η0 is --lr).
SYMBOLS = {
    "lr": "η0",
    "decay": "k",
    "power": "p",
    "gamma": "γ",
    "step_size": "s",
    "lr_min": "η_min",
    "total_updates": "T",
}

SCHEDULES = (
    ScheduleChoice("constant", "η0"),
    ScheduleChoice("inverse", "η0 / (1 + k·t)", ("decay",)),
    ScheduleChoice("power", "η0 / (1 + k·t)^p", ("decay", "power")),
    ScheduleChoice("exponential", "η0·γ^t", ("gamma",)),
    ScheduleChoice("step", "η0·γ^⌊t/s⌋", ("gamma", "step_size")),
    ScheduleChoice(
        "cosine", "η_min + (η0 - η_min)·(1 + cos(π·t/T))/2", ("lr_min", "total_updates")
    ),
)
SCHEDULE_NAMES = tuple(s.name for s in SCHEDULES)

# Defaults of the schedules' parameters; γ's depends on the schedule (a slow exponential decay,
# a halving at each step).
SCHEDULE_DEFAULTS = {"decay": 0.01, "power": 0.75, "step_size": 100, "lr_min": 0.0}
DEFAULT_GAMMA = {"exponential": 0.99, "step": 0.5}

ACTIVATIONS = ("tanh", "relu", "sigmoid")
LOSSES = ("mse", "cross-entropy")  # squared error; classes (logistic for two, softmax for more)
INITIALISATIONS = ("normal", "zeros")

# The verdicts of a run (core.verdict), each in one sentence a learner understands.
VERDICTS = (
    (
        "converged",
        "the affine model came within --gap-tol (relative) of the least-squares optimum L*; a "
        "network's loss settled: the plateau rule stopped it (no new best by more than --tol for "
        "its patience, on the validation loss when there is a split)",
    ),
    ("still falling", "not there yet, and the loss was still going down when the run ended"),
    (
        "plateau",
        "not there, and no longer falling: the loss wanders above its best, as stochastic "
        "descent at a constant rate does",
    ),
    ("unstable", "the loss ended more than 10 times above its best: it blew up and stayed up"),
    (
        "diverged",
        "the loss became non-finite, grew 10⁴ times past its start, rose steadily at full "
        "batch, or ended above where it started",
    ),
)

# What babynn chooses when the user does not (see `core.auto`, whose docstring is the table).
# The most epochs of a run without --epochs (a full-batch fit of the affine model runs until
# converged instead, at most MAX_EPOCHS), and its plateau rule: a run whose loss may rise and fall
# (minibatches, networks) stops once its monitored loss has not improved on its best by more than
# ROUGH_TOL (relative) for ROUGH_PATIENCE epochs or a ROUGH_PATIENCE_SHARE of the epochs run,
# whichever is more; a full-batch run of the affine model, whose loss only falls, by DEFAULT_TOL
# for DEFAULT_PATIENCE epochs.
DEFAULT_EPOCHS = 1000
MAX_EPOCHS = 1_000_000
DEFAULT_TOL = 1e-10
DEFAULT_PATIENCE = 5
ROUGH_TOL = 5e-4
ROUGH_PATIENCE = 20
ROUGH_PATIENCE_SHARE = 0.25
# ... and at most ROUGH_ROW_VISITS rows × epochs (at least MIN_ROUGH_EPOCHS epochs): about twice
# the work of scikit-learn's MLPRegressor's 200 epochs on a few thousand rows
ROUGH_ROW_VISITS = 1_500_000
MIN_ROUGH_EPOCHS = 100
DEFAULT_GAP_TOL = 1e-6
# A network trains by minibatch descent, NETWORK_BATCH rows an update, unless told otherwise; with
# no --epochs it holds out NETWORK_VAL_FRAC of the rows to stop on (when that is at least
# MIN_VAL_ROWS rows), and keeps its best epoch's weights.
NETWORK_BATCH = 32
NETWORK_VAL_FRAC = 0.1
MIN_VAL_ROWS = 20

# The one rule that picks a rate: sweep-lr's suggestion, and fit --lr auto from its short sweep
# (`core.sweep.suggest`).
STEADY_RISE = 0.25  # a curve that rose more than this above its best so far is not steady

SUGGESTION_RULE = (
    "among the rates below the smallest rate that diverged or went unstable, the steady ones "
    f"(whose training loss never rose more than {STEADY_RISE:.0%} above its best so far: a "
    "margin from the divergence edge for curves that rise and fall), or all of them when none is "
    "steady; of "
    "those, the ones whose final loss is within --gap-tol of their lowest final loss; of them, the "
    "one that got there in the fewest epochs (the smaller rate on a tie)"
)

# The update rules (`core.optimizers`) and their constants' defaults
OPTIMIZERS = ("gd", "momentum", "nesterov", "adam")
DEFAULT_MOMENTUM = 0.9  # β of momentum and nesterov (scikit-learn's and PyTorch's usual value)
ADAM_DEFAULTS = (0.9, 0.999, 1e-8)  # β₁, β₂, ε: scikit-learn's and PyTorch's
