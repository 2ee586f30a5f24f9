"""Minibatch and stochastic descent on the affine model as compiled machine code, when numba is
installed (`pip install 'babynn[fast]'`): the notes' update written out row by row, as a compiled
language would, for the runs where numpy's whole-array re-arrangements (`core.descent.
BatchMapDescent`) still cost many operations a row.

This is the one module of the core that may import something besides numpy and the standard
library, and it does so only when a minibatch run of the affine model asks for the compiled loop
(`kernel`): numba is optional, and without it babynn descends with numpy as before. Set
BABYNN_COMPILED=0 to use numpy even when numba is there. Proven to give the numpy path's iterates
(to 1e-12) by tests/test_math.py::test_the_compiled_loop_gives_the_numpy_iterates.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterator
from functools import cache

import numpy as np

from babynn_cli.core.descent import Epochs, Rates, map_costs
from babynn_cli.core.rows import Rows
from babynn_cli.core.signals import held
from babynn_cli.core.vocabulary import Evaluator, Params

# rows visited (rows × epochs) from which the compiled loop pays for loading numba and the compiled
# code (about 0.4 s; compiling it the first time, about 1 s more): numpy's batch maps take about
# 270 ns a row at batch 1 on 10 features, the compiled loop about 60 ns
COMPILED_FROM_ROWS = 2_000_000
DRAW_AHEAD_FROM_ROWS = 1 << 16  # rows from which drawing the next order in a thread pays
ROWS_PER_CALL = 1 << 13  # rows gathered and handed to the compiled loop at a time (in cache)

Kernel = Callable[..., None]


def _batches(rows, mean, inverse_scale, steps, batch, W, w0, has_w0):  # pragma: no cover
    """Batch after batch of the raw rows [x, y] in the order given, the K runs' W (K, m, n) and
    w0 (K, n) updated in place: steps (batches, K) holds 2η/B for each batch and run (0: the run
    has stopped). Compiled by numba (`kernel`), not run by Python."""
    K, m, n = W.shape
    z = np.empty((batch, m))
    residual = np.empty((batch, n))
    grad_W = np.empty((m, n))
    grad_w0 = np.empty(n)
    for b in range(steps.shape[0]):
        lo = b * batch
        size = min(batch, rows.shape[0] - lo)
        for i in range(size):  # the batch's rows standardised, z = (x − mean) / scale
            for j in range(m):
                z[i, j] = (rows[lo + i, j] - mean[j]) * inverse_scale[j]
        for k in range(K):
            step = steps[b, k]
            if step == 0.0:
                continue
            for i in range(size):  # y − ŷ, ŷ = Wᵀz + w0
                for o in range(n):
                    y_hat = w0[k, o] if has_w0 else 0.0
                    for j in range(m):
                        y_hat += z[i, j] * W[k, j, o]
                    residual[i, o] = rows[lo + i, m + o] - y_hat
            grad_W[:] = 0.0  # −∇L_W · B/2 = Σ z(y − ŷ)ᵀ (answer 1.d), −∇L_w0 · B/2 = Σ (y − ŷ)
            grad_w0[:] = 0.0
            for i in range(size):
                for o in range(n):
                    grad_w0[o] += residual[i, o]
                    for j in range(m):
                        grad_W[j, o] += z[i, j] * residual[i, o]
            for j in range(m):  # W ← W − η∇L_W
                for o in range(n):
                    W[k, j, o] += step * grad_W[j, o]
            if has_w0:  # w0 ← w0 − η∇L_w0
                for o in range(n):
                    w0[k, o] += step * grad_w0[o]


def pays(rows: int, epochs: int | None, runs: int, batch: int, p: int, n: int) -> bool:
    """Whether the compiled loop is the faster way to run `runs` runs of `epochs` epochs over
    `rows` rows in batches of `batch`, θ with p rows and n columns: long enough to pay for loading
    it, and fewer operations a row than numpy's cheapest batch maps. The loop does 2·p·n
    multiplications a row and run, at about numpy's speed for its products (measured); numpy's
    maps share the batch's moments between runs, so with many runs of large batches they win."""
    if epochs is None or rows * epochs * runs < COMPILED_FROM_ROWS:
        return False
    return 2 * p * n * runs < min(map_costs(p, n, runs, batch))


@cache
def kernel() -> Kernel | None:
    """The compiled loop, or None when numba is not installed (or BABYNN_COMPILED=0). Compiled
    once and cached on disk where numba can write its cache, compiled in each process otherwise."""
    if os.environ.get("BABYNN_COMPILED", "1") == "0":
        return None
    try:
        with warnings.catch_warnings(), held():  # an import cut in half cannot be tried again
            warnings.simplefilter("ignore")
            import numba
    except ImportError:
        return None
    # compiled (or loaded from numba's cache) here, before any epoch, for the one signature the
    # descent calls it with: C-ordered float64 arrays
    signature = "void(f8[:, ::1], f8[::1], f8[::1], f8[:, ::1], i8, f8[:, :, ::1], f8[:, ::1], b1)"
    with warnings.catch_warnings(), held():
        warnings.simplefilter("ignore")
        try:
            return numba.njit(signature, cache=True, nogil=True)(_batches)
        except RuntimeError:  # no writable place for the cache
            return numba.njit(signature, cache=False, nogil=True)(_batches)


class CompiledDescent:
    """Minibatch descent on the affine model through the compiled loop: each epoch visits the
    rows in a fresh order drawn from `rng` (the same draws as the numpy descents) and updates
    after every batch."""

    exact = False

    def __init__(
        self, data: Rows, batch: int, intercept: bool, rng: np.random.Generator, losses: Evaluator
    ) -> None:
        self.data, self.batch, self.intercept, self.rng = data, batch, intercept, rng
        self.losses = losses
        self.updates_per_epoch = -(-data.n_rows // batch)
        compiled = kernel()
        assert compiled is not None
        self.kernel = compiled
        self._upcoming: tuple[threading.Thread, list[np.ndarray]] | None = None

    def restart(self, params: Params, changed: np.ndarray | None = None) -> np.ndarray:
        self.params = params
        return self.losses(params)

    def epochs(self, first: int, last: int, rates: Rates) -> Iterator[Epochs]:
        for epoch in range(first, last + 1):
            order = self._order()
            table = rates((epoch - 1) * self.updates_per_epoch, self.updates_per_epoch)
            self.params = self._epoch(self.params, order, table)
            yield Epochs.one(self.params, self.losses(self.params), table[-1])

    def _order(self) -> np.ndarray:
        """This epoch's order of the rows, and the next epoch's drawn on the other core while this
        one runs (on large data): the same draws from `rng`, one after the other. (The order
        drawn after the last epoch is never used, and nothing else draws from `rng`.)"""
        if self._upcoming is None:
            order = self.data.order(self.rng)
        else:
            thread, box = self._upcoming
            thread.join()
            order = box.pop()
        self._upcoming = None
        if self.data.n_rows >= DRAW_AHEAD_FROM_ROWS:
            drawn: list[np.ndarray] = []
            thread = threading.Thread(
                target=lambda: drawn.append(self.data.order(self.rng)), daemon=True
            )
            thread.start()
            self._upcoming = thread, drawn
        return order

    def _epoch(self, stack: Params, order: np.ndarray, rates: np.ndarray) -> Params:
        """One epoch: batches of `order`'s rows in turn; rates: (batches, K), one row a batch."""
        data, B = self.data, self.batch
        per_call = max(1, ROWS_PER_CALL // B)  # batches
        mean = np.ascontiguousarray(data.mean, dtype=float)
        inverse_scale = 1.0 / np.asarray(data.scale, dtype=float)  # (a product costs less)
        gathered = np.empty((min(per_call * B, data.n_rows), data.n_features + data.Y.shape[1]))
        steps = 2.0 * rates / self._sizes()[:, None]  # 2η/B, (batches, K)
        W = np.array(stack["W"], dtype=float, order="C")
        K, _, n = W.shape
        w0 = np.array(stack.get("w0", np.zeros((K, n))), dtype=float, order="C")
        for lo in range(0, len(rates), per_call):
            hi = min(len(rates), lo + per_call)
            rows, at = data.raw(order[lo * B : hi * B])
            # gathered first, in one call: loads that do not wait on each other
            block = np.take(rows, at, axis=0, out=gathered[: len(at)])
            step = np.ascontiguousarray(steps[lo:hi])
            self.kernel(block, mean, inverse_scale, step, B, W, w0, self.intercept)
        return {"W": W, "w0": w0} if self.intercept else {"W": W}

    def _sizes(self) -> np.ndarray:
        """Each batch's number of rows: B, the last one perhaps fewer."""
        N, B = self.data.n_rows, self.batch
        return np.clip(N - B * np.arange(self.updates_per_epoch), 1, B).astype(float)
