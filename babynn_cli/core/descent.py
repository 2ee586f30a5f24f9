"""Gradient descent: the notes' update rule applied epoch by epoch, and the exact re-arrangements
of it that run fast.

The rule, for every parameter of every model (the affine model's W and w0, a network's W1, b1,
...), is one line in `core.optimizers`, beside momentum's, Nesterov's and Adam's. An epoch applies
it once with the gradient of all the rows (gradient descent, `GradientDescent`),
or once per batch of shuffled rows (minibatch and stochastic descent, `MinibatchDescent`). These two
are the plain descents any model gets. For the affine model with squared loss the same rule can be
re-arranged, with the same numbers and to rounding the same iterates, into fewer, larger array
operations; each re-arrangement names the test that proves it equal to the plain rule:

- `MomentDescent` (full batch): the gradient is linear in the weights, with coefficients that are
  the data's centred moments, so an epoch is one small matrix product, whatever the number of rows.
- `BatchMapDescent` (minibatches): each batch's update is an affine map of the weights; an epoch is
  the product of its batches' maps.

All of them train K runs at once (one per learning rate): the parameters are stacked (a leading axis
of length K) and η is a vector of K rates, one per run. A run that has stopped gets η = 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from babynn_cli.core.moments import Moments
from babynn_cli.core.optimizers import GD, OptimizerSpec
from babynn_cli.core.rows import Rows
from babynn_cli.core.vocabulary import Evaluator, Oracle, Params, full_batch

# rates(t0, count) -> (count, K): the K runs' rates for updates t0, t0 + 1, ... (0 once stopped)
Rates = Callable[[int, int], np.ndarray]


@dataclass(frozen=True)
class Epochs:
    """What B epochs in a row leave: the K runs' parameters after each, their training losses
    (B, K), and the rate of each epoch's last update (B, K)."""

    params: Sequence[Params]
    losses: np.ndarray
    lrs: np.ndarray

    @classmethod
    def one(cls, params: Params, losses: np.ndarray, lr: np.ndarray) -> Epochs:
        return cls([params], losses[None], lr[None])


class _Stacked(Sequence[Params]):
    """The parameters after each of B epochs, held as arrays (B, K, ...): epoch j on demand."""

    def __init__(self, every: Params) -> None:
        self.every = every
        self.size = len(next(iter(every.values())))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, j: int) -> Params:  # type: ignore[override]
        return {k: v[j] for k, v in self.every.items()}


class Descent(Protocol):
    """How a model descends on some rows: the training loop's only view of the update."""

    updates_per_epoch: int
    # True when the loss cannot rise at a stable rate (full batch on a quadratic loss), so that a
    # steady rise of the loss means the rate is too large (see the training loop's stopping rules)
    exact: bool

    def restart(self, params: Params, changed: np.ndarray | None = None) -> np.ndarray:
        """Continue from `params` (stacked); `changed` (K,) marks the runs whose weights are new
        (None: all). Returns the K training losses at `params`."""
        ...

    def epochs(self, first: int, last: int, rates: Rates) -> Iterator[Epochs]:
        """Epochs first..last (counted from 1), yielded as soon as they are known (one at a time,
        or all at once)."""
        ...


class Gradients(Protocol):
    """What the plain descents need of a model."""

    def losses_and_grads(
        self, stack: Params, X: np.ndarray, Y: np.ndarray
    ) -> tuple[np.ndarray, Params]: ...

    def full_batch(self, data: Rows) -> Oracle: ...

    def evaluator(self, data: Rows) -> Evaluator: ...


def plain_descent(
    model: Gradients,
    data: Rows,
    batch_size: int | None,
    rng: np.random.Generator,
    exact: bool,
    optimizer: OptimizerSpec = GD,
) -> Descent:
    """The rule as written (the notes', or `optimizer`'s): full batch when batch_size is None or
    covers every row."""
    if batch_size is None or full_batch(batch_size, data.n_rows):
        return GradientDescent(model.full_batch(data), exact and optimizer.plain, optimizer)
    return MinibatchDescent(model, data, batch_size, rng, optimizer)


class GradientDescent:
    """Full-batch gradient descent: one update per epoch, with the gradient of all the rows."""

    updates_per_epoch = 1

    def __init__(self, oracle: Oracle, exact: bool, optimizer: OptimizerSpec = GD) -> None:
        self.oracle, self.exact = oracle, exact
        self.optimizer = optimizer.start()

    def restart(self, params: Params, changed: np.ndarray | None = None) -> np.ndarray:
        self.params = params
        self.optimizer.reset(changed)
        losses, self.grads = self.oracle(params)
        return losses

    def epochs(self, first: int, last: int, rates: Rates) -> Iterator[Epochs]:
        for lr in rates(first - 1, last - first + 1):  # update t = epoch - 1
            params = self.optimizer.step(self.params, self.grads, lr)
            losses, self.grads = self.oracle(params)
            self.params = params
            yield Epochs.one(params, losses, lr)


class MinibatchDescent:
    """Minibatch (stochastic for batch 1) descent: each epoch visits the rows in a fresh order
    drawn from `rng`, the same for every run, and updates after every batch."""

    exact = False

    def __init__(
        self,
        model: Gradients,
        data: Rows,
        batch: int,
        rng: np.random.Generator,
        optimizer: OptimizerSpec = GD,
    ) -> None:
        self.model, self.data, self.batch, self.rng = model, data, batch, rng
        self.updates_per_epoch = -(-data.n_rows // batch)
        self.losses = model.evaluator(data)
        self.optimizer = optimizer.start()

    def restart(self, params: Params, changed: np.ndarray | None = None) -> np.ndarray:
        self.params = params
        self.optimizer.reset(changed)
        return self.losses(params)

    def epochs(self, first: int, last: int, rates: Rates) -> Iterator[Epochs]:
        data, batch = self.data, self.batch
        for epoch in range(first, last + 1):
            table = rates((epoch - 1) * self.updates_per_epoch, self.updates_per_epoch)
            order = data.order(self.rng)
            # runs whose rate is 0 all epoch (they stopped) do not move: left out of the work
            active = np.flatnonzero(table.any(axis=0))
            # (a rule with state keeps it for every run: a stopped run's is 0, and it stays)
            every = len(active) == table.shape[1] or not self.optimizer.spec.plain
            params = self.params if every else {k: v[active] for k, v in self.params.items()}
            steps = table if every else table[:, active]
            for lr, lo in zip(steps, range(0, len(order), batch), strict=True):
                idx = order[lo : lo + batch]
                X, Y = data.rows(idx), data.targets(idx)
                _, grads = self.model.losses_and_grads(params, X, Y)
                params = self.optimizer.step(params, grads, lr)
            if not every:
                moved = {k: v.copy() for k, v in self.params.items()}
                for k in moved:
                    moved[k][active] = params[k]
                params = moved
            self.params = params
            yield Epochs.one(params, self.losses(params), table[-1])


class MomentDescent:
    """Full-batch gradient descent on the affine model, from the data's moments: many epochs in
    a few calls. Proven equal to `GradientDescent` by tests/test_math.py::
    test_moments_give_the_direct_iterates_and_losses (to 1e-12) and
    test_one_full_batch_step_is_exactly_the_update_rule; with momentum or Nesterov, by
    tests/test_optimizers.py::test_moment_descent_with_momentum_is_the_plain_rule.

    With the moments (`Moments`), ∇L_W = 2(xx·E + x̄vᵀ + res) and ∇L_w0 = 2v (answers 1.d and 1.e,
    averaged over the rows), where E = W − W*, v = w0 + Wᵀx̄ − ȳ. Both are linear in the state
    ŝ = [E; v; I] ((m + 1 + n) × n, the identity block carrying the constant term res), so the
    notes' update of W and w0 is ŝ ← ŝ − η·D·ŝ: one matrix product an epoch for all
    K runs, and the loss of every epoch from the same moments.

    Momentum and Nesterov (`core.optimizers`) are linear in the gradients too: their velocity in
    state coordinates is U = [v_W; v_w0 + v_Wᵀx̄; 0], and U ← βU − η·D·ŝ, ŝ ← ŝ + U (Nesterov:
    ŝ ← ŝ + βU − η·D·ŝ) is their rule, exactly.
    """

    updates_per_epoch = 1
    s: np.ndarray  # the K runs' states ŝ, (K, m + 1 + n, n)
    U: np.ndarray  # their velocities, with momentum

    def __init__(self, moments: Moments, has_w0: bool, optimizer: OptimizerSpec = GD) -> None:
        if not (optimizer.plain or optimizer.heavy):
            raise ValueError(f"{optimizer.name} is not linear in the gradients")
        self.optimizer = optimizer
        # the loss can rise at a stable rate with momentum: only plain descent's rise is a sign
        self.exact = optimizer.plain
        xx, x_mean, res = moments.xx, moments.x_mean, moments.res
        m, n = res.shape
        D = np.zeros((m + 1 + n, m + 1 + n))
        D[:m, :m] = xx  # ∇L_W / 2 = xx·E + x̄vᵀ + res
        D[:m, m] = x_mean
        D[:m, m + 1 :] = res
        D[m, :] = x_mean @ D[:m, :]  # Δv = x̄ᵀΔW + Δw0: the w0 step adds h·v
        D[m, m] += 1.0 if has_w0 else 0.0
        self.D = 2.0 * D
        self.moments, self.has_w0, self.m, self.n = moments, has_w0, m, n

    def state(self, stack: Params) -> np.ndarray:
        """ŝ of each stacked run: (K, m + 1 + n, n)."""
        W = stack["W"]
        mo = self.moments
        v = mo.x_mean @ W - mo.y_mean  # Wᵀx̄ - ȳ
        if self.has_w0:
            v = v + stack["w0"]
        identity = np.broadcast_to(np.eye(self.n), (len(W), self.n, self.n))
        return np.concatenate([W - mo.W_star, v[:, None, :], identity], axis=1)

    def params(self, states: np.ndarray) -> Params:
        """W (..., m, n) and w0 (..., n) of states (..., m + 1 + n, n)."""
        mo = self.moments
        W = states[..., : self.m, :] + mo.W_star
        params = {"W": W}
        if self.has_w0:
            params["w0"] = states[..., self.m, :] - mo.x_mean @ W + mo.y_mean
        return params

    def restart(self, params: Params, changed: np.ndarray | None = None) -> np.ndarray:
        fresh = self.state(params)
        # runs that go on keep their state as it is: no rounding between blocks
        self.s = fresh if changed is None else np.where(changed[:, None, None], fresh, self.s)
        if changed is None:
            self.U = np.zeros_like(self.s)
        else:
            self.U[changed] = 0.0
        return self.moments.losses(params)

    def epochs(self, first: int, last: int, rates: Rates) -> Iterator[Epochs]:
        lrs = rates(first - 1, last - first + 1)  # (B, K)
        states = np.empty((len(lrs), *self.s.shape))
        step = np.empty_like(self.s)
        previous, U, rule = self.s, self.U, self.optimizer
        for j, lr in enumerate(lrs[:, :, None, None]):
            np.matmul(self.D, previous, out=step)  # η∇L in state coordinates ...
            step *= lr
            if rule.plain:
                np.subtract(previous, step, out=states[j])  # ... ŝ ← ŝ − η·D·ŝ
            else:
                U *= rule.beta
                U -= step  # U ← βU − η·D·ŝ
                if rule.name == "momentum":
                    np.add(previous, U, out=states[j])  # ŝ ← ŝ + U
                else:
                    states[j] = previous + rule.beta * U - step  # ŝ ← ŝ + βU − η·D·ŝ
            previous = states[j]
        self.s = previous
        B, K = lrs.shape
        every = self.params(states)  # (B, K, ...)
        flat = {k: v.reshape((B * K, *v.shape[2:])) for k, v in every.items()}
        yield Epochs(_Stacked(every), self.moments.losses(flat).reshape(B, K), lrs)


# Up to this many columns in θ̂ (m + 1 + n), composing maps costs less than a Python step per batch.
MAX_WIDTH = 48
ROWS_PER_BLOCK = 1 << 16  # rows gathered at a time
FLOATS_PER_BLOCK = 1 << 22  # bounds the block's maps: maps × K × width²
TRACKED_BATCHES = 64  # batches in one tracked map (see `BatchMapDescent._tracked_maps`)


class BatchMapDescent:
    """Minibatch (and per-sample) descent on the affine model, a whole epoch in a few array
    operations. Proven equal to `MinibatchDescent` (to 1e-11) by tests/test_math.py::
    test_minibatch_epochs_as_products_of_maps_give_the_batch_by_batch_iterates, and to a plain
    Python loop of the update, sample after sample, by
    test_per_sample_descent_is_the_update_applied_row_after_row.

    The gradient of θ = [W; w0] on a batch of B rows is ∇L_θ = −(2/B) Σ x̃(y − θᵀx̃)ᵀ with x̃ = [x; 1]
    (answers 1.d and 1.e, averaged over the batch): linear in θ, so the update θ ← θ − η∇L_θ is an
    affine map of θ, a linear map of θ̂ = [θ; I]. An epoch is the product of its batches' maps, in
    order. The maps of a block of rows are built at once, in one of two ways, and multiplied
    together pairwise in a tree, with no Python loop over the batches:

    - one map per batch from its moments, I − η·D with D = 2[[Ĝ, −ĉ], [0, 0]], Ĝ = (1/B) Σ x̃x̃ᵀ,
      ĉ = (1/B) Σ x̃yᵀ (`_batch_maps`): cheapest for large batches, whose moments are one product;
    - one map per TRACKED_BATCHES batches, found by applying the update rule to the map itself
      (`_tracked_maps`): cheapest for small batches and single rows, where a map per row would
      cost a (width × width) product per row to compose.

    Momentum and Nesterov are linear too, in the state [θ; v; I] (`_momentum_maps`): with A and
    C the blocks of D (∇L_θ = Aθ + C), heavy ball v ← βv − η(Aθ + C), θ ← θ + v is the map
    [[I − ηA, βI, −ηC], [−ηA, βI, −ηC], [0, 0, I]] (Nesterov's first row: I − η(1+β)A, β²I,
    −η(1+β)C), one per batch; the velocity goes on from epoch to epoch. Proven equal to the rule
    as written by tests/test_optimizers.py::test_batch_maps_with_momentum_are_the_plain_rule.
    """

    exact = False

    def __init__(
        self,
        data: Rows,
        batch: int,
        intercept: bool,
        rng: np.random.Generator,
        losses: Evaluator,
        optimizer: OptimizerSpec = GD,
    ) -> None:
        if not (optimizer.plain or optimizer.heavy):
            raise ValueError(f"{optimizer.name} is not linear in the gradients")
        self.data, self.batch, self.intercept, self.rng = data, batch, intercept, rng
        self.losses, self.optimizer = losses, optimizer
        self.updates_per_epoch = -(-data.n_rows // batch)
        self.m, self.n = data.n_features, data.Y.shape[1]
        self.p = self.m + (1 if intercept else 0)  # rows of θ
        self.width = self.p + self.n
        self.v: np.ndarray | None = None  # the K runs' velocities (K, p, n), with momentum

    @staticmethod
    def supports(m: int, n: int, intercept: bool, optimizer: OptimizerSpec = GD) -> bool:
        p = m + int(intercept)
        return p + n + (p if optimizer.heavy else 0) <= MAX_WIDTH

    def restart(self, params: Params, changed: np.ndarray | None = None) -> np.ndarray:
        self.params = params
        if changed is None or self.v is None:
            self.v = None
        else:
            self.v[changed] = 0.0
        return self.losses(params)

    def epochs(self, first: int, last: int, rates: Rates) -> Iterator[Epochs]:
        for epoch in range(first, last + 1):
            table = rates((epoch - 1) * self.updates_per_epoch, self.updates_per_epoch)
            order = self.data.order(self.rng)
            self.params = self._epoch(self.params, order, table)
            yield Epochs.one(self.params, self.losses(self.params), table[-1])

    def tracks(self, K: int) -> bool:
        """Whether tracked maps cost less than one map per batch (see `map_costs`); with
        momentum, always a map per batch."""
        tracked, per_batch = map_costs(self.p, self.n, K, self.batch)
        return tracked < per_batch and self.optimizer.plain

    def _epoch(self, stack: Params, order: np.ndarray, rates: np.ndarray) -> Params:
        """One epoch: batches of `order`'s rows in turn; rates: (batches, K), one row a batch."""
        theta = self._theta(stack)
        K = theta.shape[0]
        B, p = self.batch, self.p
        heavy = self.optimizer.heavy
        if heavy:  # the state [θ; v; I]
            v = self.v if self.v is not None else np.zeros((K, p, self.n))
            theta = np.concatenate([theta[:, :p], v, theta[:, p:]], axis=1)
        width = theta.shape[1]
        tracked = self.tracks(K)
        per_map = TRACKED_BATCHES if tracked else 1
        maps_per_block = FLOATS_PER_BLOCK // (K * width**2)
        per_block = max(per_map, min(ROWS_PER_BLOCK // B, maps_per_block * per_map))
        per_block -= per_block % per_map
        batches = len(rates)
        for first in range(0, batches, per_block):
            last = min(batches, first + per_block)
            rows, block_rates = order[first * B : last * B], rates[first:last]
            if tracked:
                maps = self._tracked_maps(rows, block_rates)
            elif heavy:
                maps = self._momentum_maps(self._batch_maps(rows, block_rates))
            else:
                maps = self._batch_maps(rows, block_rates)
            theta = _compose(maps) @ theta
        if heavy:
            self.v = theta[:, p : 2 * p].copy()
        params = {"W": theta[:, : self.m, :].copy()}
        if self.intercept:
            params["w0"] = theta[:, self.m, :].copy()
        return params

    def _theta(self, stack: Params) -> np.ndarray:
        """θ̂ = [W; w0; I] of each run: (K, width, n)."""
        K = len(stack["W"])
        parts = [stack["W"]]
        if self.intercept:
            parts.append(stack["w0"][:, None, :])
        parts.append(np.broadcast_to(np.eye(self.n), (K, self.n, self.n)))
        return np.concatenate(parts, axis=1)

    def _padded(self, rows: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x̃ = [x; 1] (or x) and y of `rows`, padded with zero rows to `count` whole batches
        (a zero row changes nothing), and each batch's number of rows (≥ 1)."""
        B, m, p = self.batch, self.m, self.p
        Z = np.zeros((count * B, p))
        Z[: len(rows), :m] = self.data.rows(rows)
        if self.intercept:
            Z[: len(rows), m] = 1.0
        Y = np.zeros((count * B, self.n))
        Y[: len(rows)] = self.data.targets(rows)
        sizes = np.clip(len(rows) - B * np.arange(count), 1, B).astype(float)
        return Z, Y, sizes

    def _batch_maps(self, rows: np.ndarray, rates: np.ndarray) -> np.ndarray:
        """I − η·D for each batch of `rows` and each run: (batches, K, width, width)."""
        B, p, count = self.batch, self.p, len(rates)
        Z, Y, sizes = self._padded(rows, count)
        Zb, Yb = Z.reshape(count, B, p), Y.reshape(count, B, -1)
        D = np.zeros((count, self.width, self.width))
        if B == 1:  # outer products: faster than a product of 1-row matrices
            D[:, :p, :p] = Z[:, :, None] * Z[:, None, :]  # Σ x̃x̃ᵀ
            D[:, :p, p:] = -Z[:, :, None] * Y[:, None, :]  # -Σ x̃yᵀ
        else:
            D[:, :p, :p] = np.matmul(Zb.transpose(0, 2, 1), Zb)
            D[:, :p, p:] = -np.matmul(Zb.transpose(0, 2, 1), Yb)
        D *= (2.0 / sizes)[:, None, None]
        maps = -rates[:, :, None, None] * D[:, None]  # −η·D, (batches, K, width, width)
        maps += np.eye(self.width)
        return maps

    def _momentum_maps(self, plain: np.ndarray) -> np.ndarray:
        """The maps of [θ; v; I] with momentum, from the plain maps I − η·D (see the class):
        (batches, K, 2p + n, 2p + n)."""
        p, n = self.p, self.n
        beta = self.optimizer.beta
        step = plain.copy()
        step[..., :p, :p] -= np.eye(p)  # −η·[A, C]: the gradient step, as a map of [θ; I]
        count, K = plain.shape[:2]
        maps = np.zeros((count, K, 2 * p + n, 2 * p + n))
        # v' = βv − η(Aθ + C)
        maps[..., p : 2 * p, :p] = step[..., :p, :p]
        maps[..., p : 2 * p, p : 2 * p] = beta * np.eye(p)
        maps[..., p : 2 * p, 2 * p :] = step[..., :p, p:]
        if self.optimizer.name == "momentum":  # θ' = θ + v'
            maps[..., :p, :] = maps[..., p : 2 * p, :]
        else:  # θ' = θ + βv' − η(Aθ + C)
            maps[..., :p, :p] = (1.0 + beta) * step[..., :p, :p]
            maps[..., :p, p : 2 * p] = beta * beta * np.eye(p)
            maps[..., :p, 2 * p :] = (1.0 + beta) * step[..., :p, p:]
        maps[..., :p, :p] += np.eye(p)
        maps[..., 2 * p :, 2 * p :] = np.eye(n)
        return maps

    def _tracked_maps(self, rows: np.ndarray, rates: np.ndarray) -> np.ndarray:
        """The map of each run of TRACKED_BATCHES batches of `rows`: (maps, K, width, width).

        The maps of all the runs of batches are tracked side by side. Each starts as the
        identity Φ = [I 0] (θ's rows of a map of θ̂) and takes its batches in turn, applying the
        update rule to Φ as to θ: the residuals y − ŷ of the batch's rows as maps of θ̂ are
        [0 yᵀ] − x̃ᵀΦ, and θ ← θ + (2η/B) Σ x̃(y − ŷ)ᵀ becomes Φ ← Φ + (2η/B) Σ x̃([0 yᵀ] − x̃ᵀΦ).
        """
        B, p, n, w = self.batch, self.p, self.n, self.width
        k = TRACKED_BATCHES
        count = -(-len(rates) // k) * k  # whole runs of k batches: the padding ones change nothing
        Z, Y, sizes = self._padded(rows, count)
        step = np.zeros((count, rates.shape[1]))
        step[: len(rates)] = 2.0 * rates / sizes[: len(rates), None]  # 2η/B, (batches, K)
        maps = count // k
        X = Z.reshape(maps, k, 1, B, p)  # each batch's rows x̃ᵀ
        Yt = Y.reshape(maps, k, 1, B, n).swapaxes(-1, -2)  # and their targets, (maps, k, 1, n, B)
        steps = step.reshape(maps, k, -1, 1, 1)
        # Φᵀ, (maps, K, width, p): the transpose keeps a row's products contiguous
        Phi_t = np.zeros((maps, len(rates[0]), w, p))
        Phi_t[..., :p, :] = np.eye(p)
        for i in range(k):
            x = X[:, i]
            r = np.matmul(Phi_t, x.swapaxes(-1, -2))  # ŷ as a map of θ̂, transposed ...
            np.negative(r, out=r)
            r[..., p:, :] += Yt[:, i]  # ... and y − ŷ
            if B == 1:  # an outer product: faster broadcast than as a product
                Phi_t += r * (x * steps[:, i])
            else:
                Phi_t += np.matmul(r, x * steps[:, i])
        full = np.zeros((maps, len(rates[0]), w, w))
        full[..., :p, :] = Phi_t.swapaxes(-1, -2)
        full[..., p:, p:] = np.eye(n)
        return full


def map_costs(p: int, n: int, K: int, batch: int) -> tuple[float, float]:
    """What `BatchMapDescent` does a row for K runs of θ with p rows and n columns, counted in
    multiplications, its two ways: tracked maps do 2·p·width a run, which numpy does element-wise
    at about a third of the speed of the products (measured), so counted thrice; a map per batch
    costs p² for the batch's moments and width³/B a run to compose."""
    w = p + n
    return 3.0 * 2 * p * w * K, p * p + K * w**3 / batch


def _compose(maps: np.ndarray) -> np.ndarray:
    """maps[-1] @ ... @ maps[0] for maps (batches, K, w, w): pairwise, in a tree."""
    while len(maps) > 1:
        paired = np.matmul(maps[1::2], maps[0 : len(maps) - 1 : 2])  # later batch on the left
        maps = paired if len(maps) % 2 == 0 else np.concatenate([paired, maps[-1:]])
    return maps[0]
