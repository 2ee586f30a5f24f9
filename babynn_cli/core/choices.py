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
INITIALISATIONS = ("normal", "zeros")

# The verdicts of a run (core.verdict), each in one sentence a learner understands.
VERDICTS = (
    (
        "converged",
        "the affine model came within --gap-tol (relative) of the least-squares optimum L*; a "
        "network's loss settled at its best (the --tol rule stopped it within --gap-tol of it)",
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

# How long runs are when --epochs and --tol are not given (see `core.auto`: a full-batch fit of the
# affine model runs until converged instead, at most MAX_EPOCHS epochs, with no --tol rule)
DEFAULT_EPOCHS = 1000
MAX_EPOCHS = 1_000_000
DEFAULT_TOL = 1e-10
