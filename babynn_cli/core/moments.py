"""The centred second moments of a data set: all that full-batch training of an affine model needs.

Gathered in one pass over the rows (block by block, so no copy of the data is made), they give the
loss and gradient of any affine model in O(m²n) operations, however many rows there are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from babynn_cli.core.vocabulary import Params

CHUNK_ROWS = 1 << 16  # rows per block when gathering moments: bounded extra memory


@dataclass(frozen=True)
class MomentSum:
    """The moments of the rows seen so far, as sums that merge exactly and stably.

    Rows are first moved by one fixed shift (the first row seen), so a column with mean 10⁶ and
    spread 1 keeps its digits; each block contributes its count, mean and centred sums of
    products, and two sums merge as Chan, Golub and LeVeque's pairwise update:
    n = na + nb, δ = mean_b − mean_a, M = Ma + Mb + δδᵀ·na·nb/n.
    """

    shift: tuple[np.ndarray, np.ndarray]  # (x0, y0) subtracted from every row
    n: int
    mean: np.ndarray  # (m + n,) of the shifted rows [x; y]
    M: np.ndarray  # (m + n, m + n) centred sums of products

    @classmethod
    def of(
        cls, X: np.ndarray, Y: np.ndarray, shift: tuple[np.ndarray, np.ndarray] | None = None
    ) -> MomentSum:
        """One block's sums (the block's first row as the shift, unless one is given)."""
        if shift is None:
            shift = (X[0].copy(), Y[0].copy())
        Z = np.hstack([X - shift[0], Y - shift[1]])
        mean = Z.mean(axis=0)
        Z -= mean
        return cls(shift, len(Z), mean, Z.T @ Z)

    def merged(self, other: MomentSum | None) -> MomentSum:
        """These rows and `other`'s together (same shift)."""
        if other is None:
            return self
        n = self.n + other.n
        delta = self.mean - other.mean
        M = self.M + other.M + np.outer(delta, delta) * (self.n * other.n / n)
        return MomentSum(self.shift, n, other.mean + delta * (self.n / n), M)

    def moments(self) -> tuple[np.ndarray, ...]:
        """x̄, ȳ and the centred xx, xy, yy (divided by N)."""
        m = len(self.shift[0])
        x_mean, y_mean = self.mean[:m] + self.shift[0], self.mean[m:] + self.shift[1]
        C = self.M / self.n
        return x_mean, y_mean, C[:m, :m], C[:m, m:], C[m:, m:]


def merged_pairwise(sums: list[MomentSum]) -> MomentSum:
    """Many sums (one shift) merged as a balanced tree: each row's rounding passes through
    log₂(len(sums)) merges, not len(sums)."""
    if not sums:
        raise ValueError("no rows")
    while len(sums) > 1:
        pairs = [a.merged(b) for a, b in zip(sums[0::2], sums[1::2], strict=False)]
        sums = pairs + sums[len(pairs) * 2 :]
    return sums[0]


def _power_of_two_scale(A: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Per column, a power of two near max |a - mean| (1 for a constant column)."""
    spread = np.zeros(A.shape[1])
    for lo in range(0, len(A), CHUNK_ROWS):  # block by block: no copy of the whole A
        block = A[lo : lo + CHUNK_ROWS] - mean
        np.abs(block, out=block)
        spread = np.maximum(spread, block.max(axis=0))
    exponent = np.frexp(np.where(spread > 0, spread, 1.0))[1]
    return np.ldexp(1.0, exponent)


@dataclass(frozen=True)
class Moments:
    """What full-batch training of an affine model needs of X: (N, m) and Y: (N, n).

    With centred moments xx = (1/N) Σ (x - x̄)(x - x̄)ᵀ, xy = (1/N) Σ (x - x̄)(y - ȳ)ᵀ, the
    least-squares slope W* (xx·W* = xy, to rounding: res = xx·W* - xy) and the loss L* of the best
    affine fit computed directly on the data, the loss of any W, w0 is exactly

        L = L* + tr(Eᵀ·xx·E) + 2·tr(Eᵀ·res) + ||d||²,   E = W - W*,  d = ȳ - Wᵀx̄ - w0,

    a sum of small non-negative terms near the optimum, so it keeps its digits where the textbook
    form yy - 2·tr(Wᵀxy) + tr(Wᵀ·xx·W) would cancel them away.
    """

    x_mean: np.ndarray  # (m,)
    y_mean: np.ndarray  # (n,)
    xx: np.ndarray  # (m, m)
    W_star: np.ndarray  # (m, n)
    res: np.ndarray  # (m, n)
    optimum_loss: float
    spread: float = math.nan  # the loss of ŷ = ȳ: the targets' variance, summed over outputs
    n_rows: int = 0  # N (0 when not recorded)
    # per output: L*'s share and the target's variance (from `of_blocks`, for R² without rows)
    optimum_per_output: np.ndarray | None = None
    spread_per_output: np.ndarray | None = None

    @classmethod
    def of(cls, X: np.ndarray, Y: np.ndarray) -> Moments:
        """Two passes over X: (N, m), Y: (N, n): the moments, then L* on the data itself.

        Each centred column is divided by a power of two near its largest value before any
        product (exact in floating point), so sums of squares stay finite for any finite data
        whose moments are themselves finite (values up to about 1e154).
        """
        N = len(X)
        x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
        ux, uy = _power_of_two_scale(X, x_mean), _power_of_two_scale(Y, y_mean)
        m, n = X.shape[1], Y.shape[1]
        xx, xy = np.zeros((m, m)), np.zeros((m, n))
        for lo in range(0, N, CHUNK_ROWS):  # centre block by block: no copy of the whole X
            Xc = X[lo : lo + CHUNK_ROWS] - x_mean
            Xc /= ux  # one temporary block, scaled in place
            xx += Xc.T @ Xc
            xy += Xc.T @ ((Y[lo : lo + CHUNK_ROWS] - y_mean) / uy)
        with np.errstate(over="ignore"):  # moments past double precision: inf, checked by callers
            xx, xy = xx / N * np.outer(ux, ux), xy / N * np.outer(ux, uy)
        if not (np.isfinite(xx).all() and np.isfinite(xy).all()):
            nan = np.full((m, n), np.nan)
            return cls(x_mean, y_mean, xx, nan, nan, math.inf, math.inf, N)
        # W* from the equilibrated system (unit diagonal), which is far better conditioned; with
        # fewer rows than columns, from the rows themselves (O(N²m), the minimum-norm W*)
        s = np.sqrt(np.diag(xx))
        s = np.where(s > 0, s, 1.0)
        if m > N:
            Xs, Ys = (X - x_mean) / s, Y - y_mean
            W_star = np.linalg.lstsq(Xs, Ys, rcond=None)[0] / s[:, None]
        else:
            W_star = np.linalg.lstsq(xx / np.outer(s, s), xy / s[:, None], rcond=None)[0]
            W_star /= s[:, None]
        sse, sst = np.zeros(n), np.zeros(n)
        for lo in range(0, N, CHUNK_ROWS):  # L* on the data itself: its digits are all there
            Yc = Y[lo : lo + CHUNK_ROWS] - y_mean
            Yc /= uy
            R = Yc - ((X[lo : lo + CHUNK_ROWS] - x_mean) @ W_star) / uy
            sse += np.einsum("ij,ij->j", R, R)
            sst += np.einsum("ij,ij->j", Yc, Yc)
        with np.errstate(over="ignore"):  # uy² alone may overflow
            optimum, spread = (float(np.sum(s / N * uy * uy)) for s in (sse, sst))
        return cls(x_mean, y_mean, xx, W_star, xx @ W_star - xy, optimum, spread, N)

    @classmethod
    def of_blocks(cls, blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]) -> Moments:
        """The same moments from data that never sits in memory whole: `blocks()` yields the rows
        in blocks (X (b, m), Y (b, n)) and is called twice — once for the moments, merged stably
        (`MomentSum`), once for L* on the data itself, as `of` computes it."""
        total: MomentSum | None = None
        for X, Y in blocks():
            if len(X):
                total = MomentSum.of(X, Y, total.shift if total else None).merged(total)
        if total is None:
            raise ValueError("no rows")

        def squared_residuals(x_mean: np.ndarray, y_mean: np.ndarray, W: np.ndarray) -> np.ndarray:
            sse = np.zeros(W.shape[1])
            for X, Y in blocks():  # the second pass: L* on the rows themselves
                R = (Y - y_mean) - (X - x_mean) @ W
                sse += np.einsum("ij,ij->j", R, R)
            return sse

        return cls.of_sums(total, squared_residuals)

    @classmethod
    def of_sums(
        cls,
        total: MomentSum,
        squared_residuals: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    ) -> Moments:
        """The moments from merged sums, W* solved from them, and L* from
        `squared_residuals(x̄, ȳ, W*)`: each output's Σ (y - ȳ - (x - x̄)ᵀW*)² over the rows,
        a second pass over the data wherever it is (blocks here, partitions on a cluster)."""
        x_mean, y_mean, xx, xy, yy = total.moments()
        m, n = xx.shape[0], xy.shape[1]
        if not (np.isfinite(xx).all() and np.isfinite(xy).all()):
            nan = np.full((m, n), np.nan)
            return cls(x_mean, y_mean, xx, nan, nan, math.inf, math.inf, total.n)
        s = np.sqrt(np.diag(xx))
        s = np.where(s > 0, s, 1.0)
        W_star = np.linalg.lstsq(xx / np.outer(s, s), xy / s[:, None], rcond=None)[0] / s[:, None]
        optimum = squared_residuals(x_mean, y_mean, W_star) / total.n
        return cls(
            x_mean, y_mean, xx, W_star, xx @ W_star - xy, float(optimum.sum()),
            float(np.trace(yy)), total.n, optimum, np.diag(yy).copy(),
        )  # fmt: skip

    def loss_and_r2(self, params: Params) -> tuple[float, np.ndarray]:
        """One model's loss and each output's R², from the moments alone (no pass over rows):
        each output's L*_j plus its excess (see the class), against its variance."""
        assert self.optimum_per_output is not None and self.spread_per_output is not None
        W = params["W"]
        E = W - self.W_star
        d = self.y_mean - self.x_mean @ W
        if "w0" in params:
            d = d - params["w0"]
        excess = ((self.xx @ E + 2 * self.res) * E).sum(axis=0) + d * d  # per output
        per_output = self.optimum_per_output + np.maximum(excess, 0.0)
        return float(per_output.sum()), self.r2(per_output)

    def r2(self, per_output: np.ndarray) -> np.ndarray:
        """Each output's R² = 1 − loss/variance, given each output's loss (nan for a constant
        target)."""
        assert self.spread_per_output is not None
        spread = self.spread_per_output
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(spread > 0, 1.0 - per_output / spread, np.nan)

    @property
    def finite(self) -> bool:
        """Whether the moments fit in double precision (values up to about 1e154 do)."""
        return bool(np.isfinite(self.xx).all() and math.isfinite(self.optimum_loss))

    @property
    def variance(self) -> np.ndarray:
        """Each column's variance (ddof 0): the diagonal of xx."""
        return np.diag(self.xx).copy()

    def scaled(self, mean: np.ndarray, scale: np.ndarray) -> Moments:
        """The same moments in the coordinates z = (x - mean) / scale, exactly, with no pass."""
        return Moments(
            x_mean=(self.x_mean - mean) / scale,
            y_mean=self.y_mean,
            xx=self.xx / np.outer(scale, scale),
            W_star=self.W_star * scale[:, None],
            res=self.res / scale[:, None],
            optimum_loss=self.optimum_loss,
            spread=self.spread,
            n_rows=self.n_rows,
            optimum_per_output=self.optimum_per_output,
            spread_per_output=self.spread_per_output,
        )

    def gram(self, intercept: bool) -> np.ndarray:
        """X̃ᵀX̃ / N (X̃ with a column of ones when there is an intercept)."""
        G = self.xx + np.outer(self.x_mean, self.x_mean)
        if not intercept:
            return G
        s = self.x_mean
        return np.block([[G, s[:, None]], [s[None, :], np.ones((1, 1))]])

    def optimum(self, intercept: bool) -> tuple[np.ndarray, np.ndarray, float]:
        """The least-squares W, w0 and loss; without an intercept, through the origin."""
        n = len(self.y_mean)
        if intercept:
            w0 = self.y_mean - self.x_mean @ self.W_star
            return self.W_star, w0, self.optimum_loss
        G = self.xx + np.outer(self.x_mean, self.x_mean)  # (1/N) Σ x xᵀ
        xy = self.xx @ self.W_star - self.res + np.outer(self.x_mean, self.y_mean)  # (1/N) Σ x yᵀ
        s = np.sqrt(np.diag(G))
        s = np.where(s > 0, s, 1.0)
        W = np.linalg.lstsq(G / np.outer(s, s), xy / s[:, None], rcond=None)[0] / s[:, None]
        loss = float(self.losses({"W": W[None]})[0])
        return W, np.zeros(n), loss

    def _terms(self, stack: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The losses (K,), xx·E + res (K, m, n) and d (K, n) of stacked W: (K, m, n), w0: (K, n).

        Few and plain numpy calls: at full batch this is all an epoch costs.
        """
        W = stack["W"]
        E = W - self.W_star
        grad_part = self.xx @ E + self.res  # xx·W - xy
        d = self.y_mean - self.x_mean @ W  # ȳ - Wᵀx̄, (K, n)
        if "w0" in stack:
            d -= stack["w0"]
        excess = ((grad_part + self.res) * E).sum(axis=(1, 2)) + (d * d).sum(axis=1)
        # L − L* ≥ 0: a negative excess is rounding, and must never look like a loss below L*
        return self.optimum_loss + np.maximum(excess, 0.0), grad_part, d

    def losses(self, stack: Params) -> np.ndarray:
        return self._terms(stack)[0]

    def losses_and_grads(self, stack: Params) -> tuple[np.ndarray, Params]:
        losses, grad_part, d = self._terms(stack)
        # ∇L_W = (2/N) Σ x(ŷ - y)ᵀ (answer 1.d, averaged) = 2(xx·W - xy - x̄dᵀ)
        grad_W = grad_part - self.x_mean[:, None] * d[:, None, :]
        grad_W *= 2.0
        grads = {"W": grad_W}
        if "w0" in stack:
            grads["w0"] = -2.0 * d  # ∇L_w0 = (2/N) Σ (ŷ - y) (answer 1.e, averaged) = -2d
        return losses, grads
