"""The model file: JSON a person can read, written atomically, its format version checked."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from babynn_cli import __version__
from babynn_cli.core.affine import AffineModel
from babynn_cli.core.choices import ACTIVATIONS, LOSSES
from babynn_cli.core.compare import ModelPredictions
from babynn_cli.core.encoding import KINDS, Column, Encoding
from babynn_cli.core.fit import FitRequest, FitRun
from babynn_cli.core.fitted import Fitted
from babynn_cli.core.losses import class_probabilities, kind_of, row_losses
from babynn_cli.core.mlp import MLP, layers_of, params_of
from babynn_cli.core.problem import Problem, WarmStart, in_target_units
from babynn_cli.core.rows import Rows
from babynn_cli.core.scaling import Standardizer
from babynn_cli.core.schedules import describe
from babynn_cli.core.stopping import StopReason
from babynn_cli.core.verdict import relative_gap
from babynn_cli.errors import ModelFileError, UsageError
from babynn_cli.jsontext import dumps

FORMAT = "babynn-model"
FORMAT_VERSION = 3  # 2 added networks ("kind": "mlp"), 3 encodings and ids; 1 and 2 still load
READABLE_VERSIONS = (1, 2, 3)
MAX_MODEL_BYTES = 1 << 30  # a model file larger than this is not babynn's: refused unread


@dataclass(frozen=True)
class ModelFile:
    """A trained model as the file keeps it.

    The affine model ("affine") in the data's own units: ŷ = weightsᵀx + bias, weights: (m, n),
    bias: (n,). A network ("mlp"): `layers`, one (W, b) a layer, on the standardised features
    z = (x - mean) / scale, with `activation` after each hidden layer. `mean` and `scale` are the
    standardisation the model was trained with (zeros and ones without it); `training` and
    `result` record how it was made.
    """

    features: list[str]
    targets: list[str]
    weights: np.ndarray | None = None
    bias: np.ndarray | None = None
    kind: str = "affine"
    layers: list[tuple[np.ndarray, np.ndarray]] | None = None
    activation: str | None = None
    intercept: bool = True
    standardized: bool = True
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    training: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    # a network's targets as it learnt them, (y − mean)/scale, already folded into its last layer
    # (recorded for the reader; files without it, written before, mean the same)
    target_scaling: dict[str, Any] | None = None
    # how DATA's columns become `features` (None: each feature a numeric column of its name), and
    # the id columns predict writes first
    encoding: Encoding | None = None
    ids: list[str] = field(default_factory=list)
    # a classifier's: the target's labels, in the order of its outputs (None: numbers, mse)
    classes: tuple[str, ...] | None = None

    @property
    def loss(self) -> str:
        """What it learnt by (`core.losses`): mse, logistic (two classes) or softmax."""
        return "mse" if self.classes is None else kind_of("cross-entropy", len(self.classes))

    @property
    def n_outputs(self) -> int:
        """Its outputs: one a target; for classes one (two classes) or one a class."""
        if self.classes is None:
            return len(self.targets)
        return 1 if len(self.classes) == 2 else len(self.classes)

    @property
    def reads(self) -> Encoding:
        """How this model reads DATA's columns."""
        return self.encoding if self.encoding is not None else Encoding.numbers(self.features)

    @classmethod
    def of(
        cls,
        fitted: Fitted,
        problem: Problem,
        features: list[str],
        targets: list[str],
        training: dict[str, Any],
        result: dict[str, Any],
        encoding: Encoding | None = None,
        ids: Sequence[str] = (),
        classes: tuple[str, ...] | None = None,
    ) -> ModelFile:
        """The file of a finished fit: `training` records how it was made, `result` how it went,
        `encoding` how DATA's columns became its features, `ids` the id columns."""
        network = problem.model if isinstance(problem.model, MLP) else None
        layers = None
        if network is not None:  # in the targets' own units, as before: `in_target_units`
            layers = layers_of(in_target_units(problem, fitted.params))
        target_scaling = None
        if network is not None and problem.target_mean is not None:
            target_scaling = {"mean": problem.target_mean, "scale": problem.target_scale}
        return cls(
            features=features,
            targets=targets,
            weights=fitted.W,
            bias=fitted.bias,
            kind="affine" if network is None else "mlp",
            layers=layers,
            target_scaling=target_scaling,
            activation=None if network is None else network.activation,
            intercept=problem.model.intercept,
            standardized=problem.standardized,
            mean=problem.scaler.mean,
            scale=problem.scaler.scale,
            training=training,
            result=result,
            encoding=None if encoding is None or encoding.plain else encoding,
            ids=list(ids),
            classes=classes,
        )

    @property
    def hidden(self) -> tuple[int, ...]:
        return tuple(W.shape[1] for W, _ in self.layers[:-1]) if self.layers else ()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """ŷ for raw rows X: (N, m), their columns this file's features, in its order (for
        classes, the outputs z the probabilities come from: `probabilities`)."""
        m, n = len(self.features), self.n_outputs
        if self.kind == "affine":
            assert self.weights is not None and self.bias is not None
            return AffineModel(m, n).predict({"W": self.weights, "w0": self.bias}, X)
        assert self.layers is not None and self.mean is not None and self.scale is not None
        network = MLP(m, self.hidden, n, self.activation or "tanh")
        z = Standardizer(self.mean, self.scale).transform(X)
        return network.predict(params_of(self.layers), z)

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """A classifier's probability of each class for raw rows X: (N, k)."""
        return class_probabilities(self.loss, self.predict(X))

    def evaluated(
        self,
        path: Path,
        features: Sequence[str],
        targets: Sequence[str],
        problem: Problem,
        classes: Sequence[str] | None = None,
    ) -> ModelPredictions:
        """This model's predictions on the problem's rows (`features`: the data's columns), and
        its weights placed on those columns (0 for the ones it does not use) when it is affine."""
        # a category level DATA never holds is an indicator that is 0 in every one of its rows
        levels = {f for c in self.reads.columns if c.kind == "category" for f in c.features}
        lacking = [f for f in self.features if f not in features and f not in levels]
        if lacking:
            raise ModelFileError(
                f"model '{path}' uses column(s) {', '.join(lacking)} that are not among the data's "
                f"features ({', '.join(features)})"
            )
        if self.targets != list(targets):
            raise ModelFileError(
                f"model '{path}' predicts {', '.join(self.targets)}; the data's target is "
                f"{', '.join(targets)}"
            )
        self._same_loss(f"model '{path}'", problem, classes)
        at = {f: k for k, f in enumerate(features)}
        present = [k for k, f in enumerate(self.features) if f in at]
        columns = [at[self.features[k]] for k in present]

        def loss(rows: Rows) -> tuple[float, float | None]:
            """The loss on `rows` and, for classes, the accuracy."""
            total, count, right = 0.0, 0, 0
            for X, Y in rows.passes():  # block by block: streamed rows too
                mine = np.zeros((len(X), len(self.features)))
                mine[:, present] = X[:, columns]
                Z = self.predict(mine)
                total += float(row_losses(self.loss, Z, Y).sum())
                count += len(X)
                if self.classes is not None:
                    truth = Y[:, 0].astype(int) if self.loss == "logistic" else Y.argmax(axis=1)
                    right += int((self.probabilities(mine).argmax(axis=1) == truth).sum())
            return total / count, (right / count if self.classes is not None else None)

        val = None if problem.val is None else loss(problem.val)[0]
        W = None
        if self.kind == "affine" and self.weights is not None:
            W = np.zeros((len(features), self.n_outputs))
            W[columns] = self.weights[present]
        bias = self.bias if W is not None else None
        train, accuracy = loss(problem.train)
        penalty = self._penalty(problem, present, columns)
        return ModelPredictions(f"model {path}", train + penalty, val, W, bias, accuracy)

    def _penalty(self, problem: Problem, present: list[int], columns: list[int]) -> float:
        """The run's α||W||² for this model's weights, in the units the run trains in, so that
        its loss stands beside the runs' (the penalised loss they descend): an affine model's W
        on the run's standardised features; a network's layers as it learnt them (its last layer
        back on the standardised targets, the whole times s² as the runs' loss is)."""
        alpha = problem.model.l2
        if not alpha:
            return 0.0
        if self.kind == "affine":
            assert self.weights is not None
            W = self.weights[present] * problem.scaler.scale[columns][:, None]
            return alpha * float((W * W).sum())
        assert self.layers is not None
        s = 1.0 if self.target_scaling is None else float(self.target_scaling["scale"])
        squares = [float((W * W).sum()) for W, _ in self.layers]
        squares[-1] /= s * s
        return alpha * s * s * sum(squares)

    def warm_start(
        self,
        features: Sequence[str],
        targets: Sequence[str],
        problem: Problem,
        classes: Sequence[str] | None = None,
    ) -> WarmStart:
        """This file's weights to start `problem` from, its rows put in the data's feature order;
        an error when the model does not fit the data or the options."""
        if sorted(self.features) != sorted(features) or self.targets != list(targets):
            raise ModelFileError(
                f"--warm-start model has features {', '.join(self.features)} → "
                f"{', '.join(self.targets)}; the data has {', '.join(features)} → "
                f"{', '.join(targets)}"
            )
        self._same_loss("--warm-start model", problem, classes)
        order = [self.features.index(f) for f in features]
        assert self.mean is not None and self.scale is not None
        mean, scale = self.mean[order], self.scale[order]
        wanted = problem.model.hidden if isinstance(problem.model, MLP) else ()
        if self.kind == "affine":
            if wanted:
                raise UsageError("--warm-start model is affine; drop --hidden to continue it")
            if self.intercept and not problem.model.intercept:
                raise UsageError("--warm-start model has an intercept; drop --no-intercept")
            assert self.weights is not None and self.bias is not None
            return WarmStart({"W": self.weights[order], "w0": self.bias}, mean, scale)
        assert self.layers is not None
        activation = problem.model.activation if isinstance(problem.model, MLP) else None
        if self.hidden != wanted or self.activation != activation:
            shape = " ".join(f"--hidden {h}" for h in self.hidden)
            raise UsageError(
                f"--warm-start model is a network ({shape} --activation {self.activation}); "
                "give the same --hidden and --activation"
            )
        params = params_of(self.layers)
        params["W1"] = params["W1"][order]
        return WarmStart(params, mean, scale)

    def _same_loss(self, what: str, problem: Problem, classes: Sequence[str] | None) -> None:
        """An error unless this model learnt by the problem's loss, and for a classifier the
        data's `classes` are its own, in its order."""
        if self.loss == problem.model.loss and (
            self.classes is None or tuple(classes or ()) == self.classes
        ):
            return
        mine = "numbers (mse)" if self.classes is None else f"classes {', '.join(self.classes)}"
        theirs = "numbers (mse)" if not classes else f"classes {', '.join(classes)}"
        raise ModelFileError(f"{what} predicts {mine}; the data's target holds {theirs}")


def training_record(
    data: str,
    run: FitRun,
    request: FitRequest,
    init: str,
    val_frac: float,
    warm_start: str | None,
    loss: str = "mse",
    l2: float = 0.0,
) -> dict[str, Any]:
    """How a model was trained, as its file records it (`training`): the data's name, what was
    asked (`request`) and what was planned (`run.plan`: the rate, epochs and --tol used), the
    initial weights (`init`: normal, zeros or warm-start, from `warm_start`), the loss (mse or
    cross-entropy), --l2's α, and the update rule with its constants (not its state: velocity
    and Adam's moments are not kept, so --warm-start starts them at 0)."""
    plan = run.plan
    rule = plan.optimizer.record() | {"state": "not saved"}
    return {
        "data": data,
        "schedule": {"name": run.schedule.name, "formula": describe(run.schedule)},
        "lr": plan.lr,
        "batch_size": request.batch_size,
        "epochs": plan.epochs,
        "tol": plan.tol,
        "patience": plan.patience,
        "gap_tol": request.ask.gap,
        "seed": request.seed,
        "init": init,
        "val_frac": val_frac,
        "warm_start": warm_start,
        "early_stopping": plan.early_stopping,
        "loss": loss,
        "l2": l2,
        "optimizer": rule,
    }


def result_record(run: FitRun, problem: Problem, next_step: str | None) -> dict[str, Any]:
    """How the run went, as the model file's `result` and `--json` give it: the verdict and its
    numbers, why it stopped, the losses and R², what babynn chose (`lr_rule`, ...), and the next
    step in words (None when it converged)."""
    fitted, plan = run.fitted, run.plan
    end = fitted.end
    interrupted = end.stop_reason is StopReason.INTERRUPTED
    j = fitted.judgement
    return {
        "verdict": j.verdict.value,
        "epochs_run": end.epochs_run,
        "stop_reason": end.stop_reason.value,
        "weights_epoch": None if j.verdict.failed else end.weights_epoch,
        "initial_loss": j.initial_loss,
        "best_loss": j.best_loss,
        "best_loss_epoch": j.best_epoch,
        # every figure of the weights kept is of their epoch (a diverged run's: the one before)
        "final_epoch": end.weights_epoch,
        "relative_gap": (
            relative_gap(fitted.train_loss, problem.optimum_loss, problem.gap_scale)
            if j.relative_gap is not None
            else None
        ),
        "interrupted": interrupted,
        "interrupted_at_epoch": end.epochs_run + 1 if interrupted else None,
        "best_epoch": end.best_epoch,
        "final_loss": fitted.train_loss,
        "optimum_loss": problem.optimum_loss if problem.reference_exists else None,
        "optimum_unique": problem.optimum_unique if problem.reference_exists else None,
        "r2": None if problem.classifies else fitted.train_r2.tolist(),
        "val_loss": fitted.val_loss,
        "val_r2": None if fitted.val_r2 is None or problem.classifies else fitted.val_r2.tolist(),
        "accuracy": fitted.train_accuracy,
        "val_accuracy": fitted.val_accuracy,
        "separable": problem.separable,
        "n_train": problem.n_train,
        "n_val": problem.n_val,
        "next_step": next_step,
        "lr": plan.lr,
        "lr_rule": plan.lr_rule,
        "lr_probe": None
        if plan.probe is None
        else {"rates": list(plan.probe.rates), "epochs": plan.probe.epochs},
        "until_converged": plan.until_converged,
        "epochs_predicted": plan.predicted,
    }


def _floats(a: np.ndarray) -> Any:
    """Nested lists of floats; JSON writes them exactly (shortest round-trip repr)."""
    return np.asarray(a, dtype=float).tolist()


def to_json(model: ModelFile) -> str:
    m = len(model.features)
    spec: dict[str, Any] = {
        "kind": model.kind,
        "features": model.features,
        "targets": model.targets,
    }
    if model.kind == "affine":
        assert model.weights is not None and model.bias is not None
        spec |= {
            "intercept": model.intercept,
            "weights": _floats(model.weights),
            "bias": _floats(model.bias),
        }
    else:
        assert model.layers is not None
        spec |= {
            "activation": model.activation,
            "hidden": [W.shape[1] for W, _ in model.layers[:-1]],
            "layers": [{"weights": _floats(W), "bias": _floats(b)} for W, b in model.layers],
        }
        if model.target_scaling is not None:
            spec["target_scaling"] = {
                "mean": _floats(model.target_scaling["mean"]),
                "scale": float(model.target_scaling["scale"]),
                "in_last_layer": True,
            }
    if model.classes is not None:
        spec["loss"] = "cross-entropy"
        spec["classes"] = list(model.classes)
    if model.encoding is not None:
        spec["encoding"] = model.encoding.record()
    if model.ids:
        spec["ids"] = list(model.ids)
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "babynn_version": __version__,
        "model": spec,
        "standardization": {
            "enabled": model.standardized,
            "mean": _floats(model.mean if model.mean is not None else np.zeros(m)),
            "scale": _floats(model.scale if model.scale is not None else np.ones(m)),
        },
        "training": model.training,
        "result": model.result,
    }
    return dumps(doc, indent=2) + "\n"


class _Damaged(Exception):
    """What is wrong with a model file's content, in words."""


def load_model(path: Path) -> ModelFile:
    """A model file, every field checked for type, shape, range and finiteness."""
    name = f"'{path}'"
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size  # a file past the limit is not read at all ...
            raw = b"" if size > MAX_MODEL_BYTES else f.read(MAX_MODEL_BYTES + 1)  # ... nor a pipe

    except FileNotFoundError:
        raise ModelFileError(f"cannot read model file {name}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"cannot read model file {name}: it is a directory") from None
    except OSError as e:
        raise ModelFileError(f"cannot read model file {name}: {e.strerror}") from None
    if max(size, len(raw)) > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"model file {name} is larger than {MAX_MODEL_BYTES:,} bytes: not a babynn model"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(f"model file {name} is damaged: it is not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelFileError(
            f"model file {name} is damaged: not valid JSON ({e.msg} at line {e.lineno})"
        ) from None
    except (RecursionError, ValueError):  # nested past Python's stack, a 5,000-digit number
        raise ModelFileError(f"model file {name} is damaged: not a model's JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(f"{name} is not a babynn model file")
    version = doc.get("format_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise ModelFileError(
            f"model file {name} has format version {version!r}; "
            f"babynn {__version__} reads versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    try:
        return _model_of(doc, version)
    except _Damaged as e:
        raise ModelFileError(f"model file {name} is damaged: {e}") from None


def _model_of(doc: dict[str, Any], version: int) -> ModelFile:
    spec = _field(doc, "model", dict)
    kind = _field(spec, "kind", str)
    if kind not in ("affine", "mlp") or (kind == "mlp" and version < 2):
        raise _Damaged(f"an unknown kind of model {kind!r}")
    features = _names(spec, "features")
    targets = _names(spec, "targets")
    if set(features) & set(targets):
        raise _Damaged("a column is both a feature and a target")
    classes = _classes(spec, targets) if version >= 3 else None
    m = len(features)
    n = len(targets) if classes is None else (1 if len(classes) == 2 else len(classes))
    std = _field(doc, "standardization", dict)
    scale = _numbers(_field(std, "scale", list), (m,), "standardization scales")
    if not (scale > 0).all():
        raise _Damaged("a standardization scale is not above 0 (it divides the features)")
    common: dict[str, Any] = {
        "features": features,
        "targets": targets,
        "kind": kind,
        "standardized": _field(std, "enabled", bool),
        "mean": _numbers(_field(std, "mean", list), (m,), "standardization means"),
        "scale": scale,
        "training": _field(doc, "training", dict, {}),
        "result": _field(doc, "result", dict, {}),
        "encoding": _encoding(spec, features) if version >= 3 else None,
        "ids": _ids(spec, features, targets) if version >= 3 else [],
        "classes": classes,
    }
    if kind == "affine":
        return ModelFile(
            **common,
            weights=_numbers(_field(spec, "weights", list), (m, n), "weights"),
            bias=_numbers(_field(spec, "bias", list), (n,), "bias values"),
            intercept=_field(spec, "intercept", bool, True),
        )
    hidden = _field(spec, "hidden", list)
    if not hidden or not all(type(h) is int and 0 < h <= MAX_UNITS for h in hidden):
        raise _Damaged(f"'hidden' must list layer sizes, whole numbers from 1 to {MAX_UNITS}")
    sizes = [m, *hidden, n]
    layers = _field(spec, "layers", list)
    if len(layers) != len(sizes) - 1 or not all(isinstance(layer, dict) for layer in layers):
        raise _Damaged(f"{len(sizes) - 1} layers expected")
    activation = _field(spec, "activation", str)
    if activation not in ACTIVATIONS:
        raise _Damaged(f"an unknown activation {activation!r}")
    weights = []
    for i, layer in enumerate(layers):
        shape, what = (sizes[i], sizes[i + 1]), f"layer {i + 1}"
        W = _numbers(_field(layer, "weights", list), shape, f"{what} weights")
        b = _numbers(_field(layer, "bias", list), shape[1:], f"{what} bias values")
        weights.append((W, b))
    scaling = _field(spec, "target_scaling", dict, None)  # optional: the last layer holds it
    if scaling is not None:
        s = scaling.get("scale")
        if not isinstance(s, int | float) or isinstance(s, bool) or not (0 < s < math.inf):
            raise _Damaged("'target_scaling' has a scale that is not a number above 0")
        mean = _numbers(_field(scaling, "mean", list), (n,), "target_scaling means")
        scaling = {"mean": mean, "scale": float(s)}
    return ModelFile(**common, layers=weights, activation=activation, target_scaling=scaling)


MAX_UNITS = 1 << 20
_MISSING = object()


def _encoding(spec: dict[str, Any], features: list[str]) -> Encoding | None:
    """The optional 'encoding': how DATA's columns became the features, checked against them."""
    record = _field(spec, "encoding", dict, None)
    if record is None:
        return None
    columns = []
    for item in _field(record, "columns", list):
        if not isinstance(item, dict):
            raise _Damaged("'encoding' lists a column that is not an object")
        name, kind = _field(item, "name", str), _field(item, "kind", str)
        if kind not in KINDS:
            raise _Damaged(f"an unknown kind of column {kind!r}")
        levels = _field(item, "levels", list, [])
        if not all(isinstance(level, str) for level in levels) or len(set(levels)) != len(levels):
            raise _Damaged(f"the levels of column {name!r} are not distinct names")
        fill = item.get("fill")
        if fill is not None and not _finite_number(fill):
            raise _Damaged(f"the fill of column {name!r} is not a finite number")
        columns.append(Column(name, kind, tuple(levels), None if fill is None else float(fill)))
    encoding = Encoding(tuple(columns), _field(record, "impute", bool, False))
    if encoding.features != features:
        raise _Damaged("the 'encoding' does not give the model's features")
    return encoding


def _classes(spec: dict[str, Any], targets: list[str]) -> tuple[str, ...] | None:
    """A classifier's 'loss' and 'classes', checked: distinct labels, two or more, one target."""
    loss = _field(spec, "loss", str, "mse")
    if loss not in LOSSES:
        raise _Damaged(f"an unknown loss {loss!r}")
    if loss == "mse":
        return None
    classes = _field(spec, "classes", list)
    if not all(isinstance(c, str) for c in classes) or len(set(classes)) != len(classes):
        raise _Damaged("'classes' must list distinct labels")
    if len(classes) < 2 or len(targets) != 1:
        raise _Damaged("a classifier has one target and two classes or more")
    return tuple(classes)


def _finite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer past double precision
        return False


def _ids(spec: dict[str, Any], features: list[str], targets: list[str]) -> list[str]:
    ids = _field(spec, "ids", list, [])
    if not all(isinstance(i, str) and i.strip() for i in ids) or len(set(ids)) != len(ids):
        raise _Damaged("'ids' must list column names")
    if set(ids) & {*features, *targets}:
        raise _Damaged("an id column is also a feature or a target")
    return list(ids)


def _field(doc: dict[str, Any], key: str, kind: type, default: Any = _MISSING) -> Any:
    """doc[key], which must be of type `kind` (a bool is not a number here)."""
    if key not in doc:
        if default is _MISSING:
            raise _Damaged(f"missing {key!r}")
        return default
    value = doc[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise _Damaged(f"{key!r} is not a {kind.__name__}")
    return value


def _names(spec: dict[str, Any], key: str) -> list[str]:
    names = _field(spec, key, list)
    if not names or not all(isinstance(x, str) and x.strip() for x in names):
        raise _Damaged(f"{key!r} must list column names")
    if len(set(names)) != len(names):
        raise _Damaged(f"{key!r} names a column twice")
    return list(names)


def _numbers(value: list[Any], shape: tuple[int, ...], what: str) -> np.ndarray:
    """Nested lists of finite numbers (no booleans, no strings) of exactly `shape`."""

    def check(v: Any, depth: int) -> None:
        if depth == len(shape):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise _Damaged(f"the {what} hold a {type(v).__name__}, not a number")
            return
        if not isinstance(v, list) or len(v) != shape[depth]:
            raise _Damaged(f"the {what} are not {' × '.join(map(str, shape))} numbers")
        for item in v:
            check(item, depth + 1)

    check(value, 0)
    try:
        array = np.array(value, dtype=float).reshape(shape)
    except OverflowError:  # an integer past double precision
        raise _Damaged(f"the {what} are not all finite") from None
    if not np.isfinite(array).all():
        raise _Damaged(f"the {what} are not all finite")
    return array
