"""The numerical core of babynn: numpy and the standard library only, no I/O, no printing."""

from babynn_cli.core.affine import AffineModel, from_raw_units, to_raw_units
from babynn_cli.core.compare import Comparison, Config, SavedRow, compare
from babynn_cli.core.fit import (
    Fitted,
    Problem,
    ProblemError,
    Saved,
    finish,
    fit,
    initial_params,
    make_problem,
    optimum_loss,
    predict_raw,
    run_schedules,
    updates_per_epoch,
)
from babynn_cli.core.mlp import ACTIVATIONS, MLP, layers_of, params_of
from babynn_cli.core.model import Model, Params, mse, r2_per_output
from babynn_cli.core.reference import LeastSquares, least_squares
from babynn_cli.core.scaling import Standardizer
from babynn_cli.core.schedules import (
    SCHEDULES,
    Schedule,
    ScheduleSpec,
    describe,
    make_schedule,
)
from babynn_cli.core.sweep import DIVERGED, INTERRUPTED, Sweep, SweepRow, Theory, lr_grid, sweep
from babynn_cli.core.theory import Curvature
from babynn_cli.core.train import (
    EpochInfo,
    History,
    Run,
    StopReason,
    TrainResult,
    TrainSettings,
    train,
)

__all__ = [
    "ACTIVATIONS",
    "DIVERGED",
    "INTERRUPTED",
    "MLP",
    "SCHEDULES",
    "AffineModel",
    "Comparison",
    "Config",
    "Curvature",
    "EpochInfo",
    "Fitted",
    "History",
    "LeastSquares",
    "Model",
    "Params",
    "Problem",
    "ProblemError",
    "Run",
    "Saved",
    "SavedRow",
    "Schedule",
    "ScheduleSpec",
    "Standardizer",
    "StopReason",
    "Sweep",
    "SweepRow",
    "Theory",
    "TrainResult",
    "TrainSettings",
    "compare",
    "describe",
    "finish",
    "fit",
    "from_raw_units",
    "initial_params",
    "layers_of",
    "least_squares",
    "lr_grid",
    "make_problem",
    "make_schedule",
    "mse",
    "optimum_loss",
    "params_of",
    "predict_raw",
    "r2_per_output",
    "run_schedules",
    "sweep",
    "to_raw_units",
    "train",
    "updates_per_epoch",
]
