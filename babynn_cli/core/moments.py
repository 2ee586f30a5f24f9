"""The centred second moments of a data set: all that full-batch training of an affine model needs.

Gathered in one pass over the rows (block by block, so no copy of the data is made), they give the
loss and gradient of any affine model in O(m²n) operations, however many rows there are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from babynn_cli.core.lowrank import LowRank, RowsOrigin, Second, all_finite, diagonal, rescaled
from babynn_cli.core.reference import (
    EXTREME_UNIT,
    Fit,
    LeastSquares,
    Terms,
    Triangle,
    units_near,
)
from babynn_cli.core.threads import blas_threads, cores
from babynn_cli.core.vocabulary import Params

# The second pass over the rows (wherever they are): each fit's `Terms` over all the rows, with the
# refinement's triangle where the flag says so (`Fit.terms`).
SecondPass = Callable[[list[tuple[Fit, bool]]], list[Terms]]

CHUNK_ROWS = 1 << 16  # rows per block when gathering moments: bounded extra memory
# The most features the m × m moments are gathered for (128 MiB each at 4,096; solving, judging
# and standardising with them takes O(m³) work: 5 rows × 3,000 features took 13 s and 750 MB).
# Past it, rows in memory that are fewer than the features keep their moments as the rows
# themselves (`Moments.of_wide`: memory and work follow the rows); other data is refused.
MAX_FEATURES = 4096


class TooManyFeatures(ValueError):
    """More features than the moments are gathered for (MAX_FEATURES), with as many rows."""

    def __init__(self, m: int, streamed: bool) -> None:
        wide = (
            "(or more, with fewer rows than features, read in memory: without --stream or "
            "--scheduler)"
            if streamed
            else "unless there are fewer rows than features"
        )
        super().__init__(
            f"{m:,} features: babynn works from their {m:,} × {m:,} second moments (the "
            "least-squares reference, the theory of full-batch descent, the standardisation), "
            f"which take O(m³) work; at most {MAX_FEATURES:,} features {wide}: choose fewer "
            "with --features or --exclude"
        )


def wide(X: np.ndarray) -> bool:
    """Whether these rows keep their moments as the rows themselves (`Moments.of_wide`): fewer
    rows than features, whose m × m moments would cost more than the rows (5 rows × 2,500
    features took 7.5 s and 570 MB that way, 1.2 s and 200 MB this way)."""
    return len(X) < X.shape[1]


@dataclass(frozen=True)
class MomentSum:
    """The moments of the rows seen so far, held as the triangle R of QR of the rows
    [1, x − x0, y − y0] (`core.reference.Triangle`), which merges stably: R of two sets of rows
    is R of their triangles stacked. The means and centred moments follow from R exactly (its
    first row holds the means, the rest is the centred rows' triangle, RᵀR their Gram matrix), and
    the least-squares fit is solved from it without squaring κ.

    Rows are first moved by one fixed shift (the first row seen), so a column with mean 10⁶ and
    spread 1 keeps its digits.
    """

    shift: tuple[np.ndarray, np.ndarray]  # (x0, y0) subtracted from every row
    n: int
    triangle: Triangle

    @classmethod
    def of(
        cls, X: np.ndarray, Y: np.ndarray, shift: tuple[np.ndarray, np.ndarray] | None = None
    ) -> MomentSum:
        """One block's sums (the block's first row as the shift, unless one is given)."""
        if X.shape[1] > MAX_FEATURES:
            raise TooManyFeatures(X.shape[1], streamed=True)
        if shift is None:
            shift = (X[0].copy(), Y[0].copy())
        units = (units_near(shift[0]), units_near(shift[1]))
        return cls(shift, len(X), Triangle.of(X, Y, shift, units))

    def merged(self, other: MomentSum | None) -> MomentSum:
        """These rows and `other`'s together (same shift)."""
        if other is None:
            return self
        return MomentSum(self.shift, self.n + other.n, self.triangle.merged(other.triangle))

    def moments(self) -> tuple[np.ndarray, ...]:
        """x̄, ȳ and the centred xx, xy, yy (divided by N)."""
        return self.triangle.moments(self.n)


class Origin:
    """The least-squares fit through the origin (`--no-intercept`), found from the triangle with
    its own second pass over the rows, and only when asked for: most runs have an intercept."""

    def __init__(self, triangle: Triangle, n_rows: int, second_pass: SecondPass) -> None:
        self.triangle, self.n_rows, self.second_pass = triangle, n_rows, second_pass
        self._found: tuple[np.ndarray, float] | None = None

    def found(self) -> tuple[np.ndarray, float]:
        """W (raw units) and L* of the fit through the origin."""
        if self._found is None:
            fit = self.triangle.fit(False, self.n_rows)
            refine = fit.worth_refining
            (terms,) = self.second_pass([(fit, refine)])
            fit, losses = fit.refined(terms) if refine else (fit, fit.losses(terms))
            self._found = fit.W, float(losses.sum())
        return self._found


Mergeable = TypeVar("Mergeable", MomentSum, Terms)


def merged_pairwise(sums: list[Mergeable]) -> Mergeable:
    """Many sums (one shift) merged as a balanced tree: each row's rounding passes through
    log₂(len(sums)) merges, not len(sums)."""
    if not sums:
        raise ValueError("no rows")
    while len(sums) > 1:
        pairs = [a.merged(b) for a, b in zip(sums[0::2], sums[1::2], strict=False)]
        sums = pairs + sums[len(pairs) * 2 :]
    return sums[0]


def _second_pass(
    blocks: Iterable[tuple[np.ndarray, np.ndarray]], fits: list[tuple[Fit, bool]]
) -> list[Terms]:
    """Each fit's `Terms` over all the blocks' rows."""
    shares: list[Terms | None] = [None] * len(fits)
    for X, Y in blocks:
        if len(X):
            shares = [
                f.terms(X, Y, refine).merged(t) for t, (f, refine) in zip(shares, fits, strict=True)
            ]
    assert all(t is not None for t in shares)
    return [t for t in shares if t is not None]


def _power_of_two_scale(A: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Per column, a power of two near max |a - mean| (1 for a constant column)."""
    top, bottom = _extremes(A)
    with np.errstate(over="ignore"):  # past double precision: inf, checked by callers
        spread = np.maximum(top - mean, mean - bottom)
    exponent = np.frexp(np.where(spread > 0, spread, 1.0))[1]
    return np.ldexp(1.0, exponent)


def _extremes(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's largest and smallest value, with no copy of A; on many rows, a part of the
    rows on each core (the same values whatever the cut: 12 → 3.4 ms on 10⁶ × 10)."""
    threads = min(cores(), len(A) // CHUNK_ROWS)
    if threads < 2:
        return A.max(axis=0), A.min(axis=0)
    cuts = np.linspace(0, len(A), threads + 1).astype(int)

    def part(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        return A[lo:hi].max(axis=0), A[lo:hi].min(axis=0)

    with ThreadPoolExecutor(threads) as pool:
        tops, bottoms = zip(*pool.map(part, cuts[:-1], cuts[1:]), strict=True)
    return np.max(tops, axis=0), np.min(bottoms, axis=0)


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
    xx: Second  # (m, m), or its factor when there are fewer rows than features (`of_wide`)
    W_star: np.ndarray  # (m, n)
    res: np.ndarray  # (m, n)
    optimum_loss: float
    spread: float = math.nan  # the loss of ŷ = ȳ: the targets' variance, summed over outputs
    n_rows: int = 0  # N (0 when not recorded)
    # per output: L*'s share and the target's variance (for R² without rows)
    optimum_per_output: np.ndarray | None = None
    spread_per_output: np.ndarray | None = None
    w0_star: np.ndarray | None = None  # the least-squares intercept
    unique: bool = True  # whether the least-squares fit is the only one (full rank)
    # the least-squares fit through the origin (no intercept), found when asked for, and the
    # scale of these coordinates (z = x / scale) against the raw ones it is found in
    origin: Origin | RowsOrigin | None = field(default=None, compare=False)
    origin_scale: np.ndarray | None = None
    # Features so large or small that their squares leave double precision (`Triangle.
    # feature_unit`): each has a power-of-two unit, and x̄, xx, W*, res are of x / unit (exact);
    # `scaled`, `optimum` and `loss_and_r2` take and give the raw x's. None: raw units.
    unit: np.ndarray | None = None

    @classmethod
    def of(cls, X: np.ndarray, Y: np.ndarray) -> Moments:
        """Two passes over X: (N, m), Y: (N, n): the triangle of the rows (`Triangle`), which
        holds the moments and the least-squares fit, then L* (and the fit's refinement) on the
        data itself.

        Each centred column is divided by a power of two near its largest value before any
        product (exact in floating point), so sums of squares stay finite for any finite data
        whose moments are themselves finite; features beyond that keep their moments in units
        of their own (`Triangle.feature_unit`), so only a target past about 1e154 is too large.
        """
        if wide(X):
            return cls.of_wide(X, Y)
        if X.shape[1] > MAX_FEATURES:
            raise TooManyFeatures(X.shape[1], streamed=False)
        N = len(X)
        x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
        units = _power_of_two_scale(X, x_mean), _power_of_two_scale(Y, y_mean)
        # block by block (no copy of X), on every core
        triangle = Triangle.of(X, Y, (x_mean, y_mean), units, cores())
        m, n = X.shape[1], Y.shape[1]
        x_mean, y_mean, xx, xy, yy = triangle.moments(N, triangle.feature_unit())
        if not (np.isfinite(xx).all() and np.isfinite(xy).all()):
            nan = np.full((m, n), np.nan)
            return cls(x_mean, y_mean, xx, nan, nan, math.inf, math.inf, N)

        def second_pass(fits: list[tuple[Fit, bool]]) -> list[Terms]:
            threads = cores()
            rows = CHUNK_ROWS // threads  # the threads' blocks together hold CHUNK_ROWS rows
            starts = np.arange(0, N, rows)
            groups = [g for g in np.array_split(starts, threads) if len(g)]

            def share(group: np.ndarray) -> list[Terms]:
                blocks = ((X[lo : lo + rows], Y[lo : lo + rows]) for lo in group)
                return _second_pass(blocks, fits)

            if len(groups) == 1:
                return share(groups[0])
            with blas_threads(1), ThreadPoolExecutor(len(groups)) as pool:
                shares = list(pool.map(share, groups))  # a thread for each core's blocks
            return [merged_pairwise(list(terms)) for terms in zip(*shares, strict=True)]

        return cls.solved(x_mean, y_mean, xx, xy, np.diag(yy), triangle, N, second_pass)

    @classmethod
    def of_wide(cls, X: np.ndarray, Y: np.ndarray) -> Moments:
        """The moments of fewer rows than features (`wide`), with xx kept as the centred rows
        over √N (`core.lowrank`): O(Nm) memory. The least-squares fit is the one of least norm
        (never unique: the centred rows have rank below N), from the SVD of the centred rows
        (np.linalg.lstsq, O(N²m)); L* from its residual over the rows. Features so large or
        small that their squares leave double precision are kept in units of their own, as `of`
        keeps them (`unit`; the least norm is then of the weights for x / unit)."""
        N = len(X)
        units = _power_of_two_scale(X, X.mean(axis=0))
        extreme = np.any((units > EXTREME_UNIT) | (units < 1 / EXTREME_UNIT))
        unit = units if extreme else None
        if unit is not None:
            X = X / unit
        x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
        Xc, Yc = X - x_mean, Y - y_mean
        F = Xc / math.sqrt(N)
        if not (np.isfinite(F).all() and np.isfinite(Yc).all()):
            nan = np.full((X.shape[1], Y.shape[1]), np.nan)
            return cls(x_mean, y_mean, LowRank(F), nan, nan, math.inf, math.inf, N)
        W = np.linalg.lstsq(Xc, Yc, rcond=None)[0]
        r = Yc - Xc @ W
        losses, spread = np.einsum("ij,ij->j", r, r) / N, np.einsum("ij,ij->j", Yc, Yc) / N
        res = F.T @ (F @ W - Yc / math.sqrt(N))  # xx·W − xy
        return cls(
            x_mean, y_mean, LowRank(F), W, res, float(losses.sum()), float(spread.sum()), N,
            losses, spread, y_mean - x_mean @ W, False, RowsOrigin(X, Y), None, unit,
        )  # fmt: skip

    @property
    def low_rank(self) -> bool:
        """Whether xx is kept as its factor (`of_wide`)."""
        return isinstance(self.xx, LowRank)

    def dense_xx(self) -> np.ndarray | None:
        """xx as the m × m matrix, formed from its factor for at most MAX_FEATURES features
        (what a ridge's solve and the Gram matrix need); None past that."""
        if isinstance(self.xx, np.ndarray):
            return self.xx
        return self.xx.dense() if len(self.x_mean) <= MAX_FEATURES else None

    @classmethod
    def of_blocks(cls, blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]) -> Moments:
        """The same moments from data that never sits in memory whole: `blocks()` yields the rows
        in blocks (X (b, m), Y (b, n)) and is called twice — once for the moments and the
        triangle, merged stably (`MomentSum`), once for L* on the data itself, as `of` computes
        it."""
        total: MomentSum | None = None
        for X, Y in blocks():
            if len(X):
                total = MomentSum.of(X, Y, total.shift if total else None).merged(total)
        if total is None:
            raise ValueError("no rows")

        def second_pass(fits: list[tuple[Fit, bool]]) -> list[Terms]:
            return _second_pass(blocks(), fits)

        return cls.of_sums(total, second_pass)

    @classmethod
    def of_sums(cls, total: MomentSum, second_pass: SecondPass) -> Moments:
        """The moments from merged sums, the least-squares fit from their triangle, refined and
        its L* found by `second_pass`, a second pass over the data wherever it is (blocks here,
        partitions on a cluster)."""
        x_mean, y_mean, xx, xy, yy = total.triangle.moments(total.n, total.triangle.feature_unit())
        m, n = xx.shape[0], xy.shape[1]
        if not (np.isfinite(xx).all() and np.isfinite(xy).all()):
            nan = np.full((m, n), np.nan)
            return cls(x_mean, y_mean, xx, nan, nan, math.inf, math.inf, total.n)
        return cls.solved(x_mean, y_mean, xx, xy, np.diag(yy), total.triangle, total.n, second_pass)

    @classmethod
    def solved(
        cls,
        x_mean: np.ndarray,
        y_mean: np.ndarray,
        xx: np.ndarray,
        xy: np.ndarray,
        yy: np.ndarray,
        triangle: Triangle,
        N: int,
        second_pass: SecondPass,
    ) -> Moments:
        """The moments with both least-squares fits (with and without an intercept) from the
        triangle, refined where that pays and measured in one more pass (`core.reference`)."""
        fit = triangle.fit(True, N)
        refine = fit.worth_refining
        (terms,) = second_pass([(fit, refine)])
        best, losses = fit.refined(terms) if refine else (fit, fit.losses(terms))
        unit = triangle.feature_unit()  # the features' unit, where the moments are kept in one
        W = best.W if unit is None else best.W * unit[:, None]
        return cls(
            x_mean, y_mean, xx, W, xx @ W - xy, float(losses.sum()), float(yy.sum()), N, losses,
            yy, best.w0, best.unique, Origin(triangle, N, second_pass), unit, unit,
        )  # fmt: skip

    def loss_and_r2(self, params: Params) -> tuple[float, np.ndarray]:
        """One model's loss and each output's R², from the moments alone (no pass over rows):
        each output's L*_j plus its excess (see the class), against its variance."""
        assert self.optimum_per_output is not None and self.spread_per_output is not None
        W = params["W"] if self.unit is None else params["W"] * self.unit[:, None]
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
        """Whether the moments fit in double precision (any features do, in their units; targets
        up to about 1e154)."""
        return bool(
            all_finite(self.xx) and math.isfinite(self.optimum_loss) and math.isfinite(self.spread)
        )

    @property
    def variance(self) -> np.ndarray:
        """Each column's variance (ddof 0): the diagonal of xx."""
        return diagonal(self.xx)

    def scaled(self, mean: np.ndarray, scale: np.ndarray) -> Moments:
        """The same moments in the coordinates z = (x - mean) / scale, exactly, with no pass
        (`mean` and `scale` of the raw x)."""
        if self.unit is not None:  # z = (x/unit − mean/unit) / (scale/unit)
            mean, scale = mean / self.unit, scale / self.unit
        return Moments(
            x_mean=(self.x_mean - mean) / scale,
            y_mean=self.y_mean,
            xx=rescaled(self.xx, scale),
            W_star=self.W_star * scale[:, None],
            res=self.res / scale[:, None],
            optimum_loss=self.optimum_loss,
            spread=self.spread,
            n_rows=self.n_rows,
            optimum_per_output=self.optimum_per_output,
            spread_per_output=self.spread_per_output,
            # ŷ = Wᵀx + w0 = (W·scale)ᵀz + (w0 + meanᵀW); through the origin, mean is 0
            w0_star=None if self.w0_star is None else self.w0_star + mean @ self.W_star,
            unique=self.unique,
            origin=self.origin,
            origin_scale=scale if self.origin_scale is None else self.origin_scale * scale,
        )

    def ridged(self, alpha: float) -> Moments:
        """The same data with the penalty α||W||² added to the loss (w0 not penalised): the loss
        is still a quadratic of W, with xx + αI in the place of xx, its minimum W*_α =
        (xx + αI)⁻¹xy (ridge regression) and L*_α = L(W*_α) + α||W*_α||². Everything that reads
        the moments (descent, theory, gaps) then works on the penalised loss unchanged."""
        if not alpha:
            return self
        dense = self.dense_xx()
        assert dense is not None, "--l2 past MAX_FEATURES with fewer rows is refused"
        m = len(self.x_mean)
        xy = dense @ self.W_star - self.res
        xx = dense + alpha * np.eye(m)
        W = np.linalg.solve(xx, xy)
        E = W - self.W_star
        per_output = (
            (self.optimum_per_output if self.optimum_per_output is not None else 0.0)
            + ((self.xx @ E + 2.0 * self.res) * E).sum(axis=0)  # the data's excess at W*_α
            + alpha * (W * W).sum(axis=0)  # ... and the penalty
        )
        return replace(
            self,
            xx=xx,
            W_star=W,
            res=xx @ W - xy,
            optimum_loss=float(np.sum(per_output)),
            optimum_per_output=np.asarray(per_output),
            w0_star=self.y_mean - self.x_mean @ W,
            unique=True,
            origin=None,
            origin_scale=None,
        )

    def gram(self, intercept: bool) -> np.ndarray:
        """X̃ᵀX̃ / N (X̃ with a column of ones when there is an intercept)."""
        dense = self.dense_xx()
        assert dense is not None, "never formed past MAX_FEATURES"
        G = dense + np.outer(self.x_mean, self.x_mean)
        if not intercept:
            return G
        s = self.x_mean
        return np.block([[G, s[:, None]], [s[None, :], np.ones((1, 1))]])

    def optimum(self, intercept: bool) -> tuple[np.ndarray, np.ndarray, float]:
        """The least-squares W, w0 and loss; without an intercept, through the origin (W for
        the raw x, whatever `unit`)."""
        if intercept:
            assert self.w0_star is not None
            W = self.W_star if self.unit is None else self.W_star / self.unit[:, None]
            return W, self.w0_star, self.optimum_loss
        assert self.origin is not None
        W, loss = self.origin.found()
        if self.origin_scale is not None:
            W = W * self.origin_scale[:, None]
        if self.unit is not None:
            W = W / self.unit[:, None]
        return W, np.zeros(len(self.y_mean)), loss

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


def least_squares(X: np.ndarray, Y: np.ndarray, intercept: bool = True) -> LeastSquares:
    """The least-squares affine fit of Y: (N, n) on X: (N, m) in memory (`core.reference`)."""
    W, w0, loss = Moments.of(X, Y).optimum(intercept)
    return LeastSquares(W, w0, loss)
