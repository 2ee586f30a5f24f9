"""The closed-form optimum W̃* = argmin ||Y − X̃W̃||², to the last digits double precision allows.

The notes write it as (X̃ᵀX̃)⁻¹X̃ᵀY; forming X̃ᵀX̃ squares the condition number κ (a design with
κ = 10⁸ leaves nothing of sixteen digits), so babynn never solves with it. Instead:

1. `Triangle`: the rows [1, x − x0, y − y0] are reduced to their triangle R by Householder QR, block
   by block: R of the rows so far stacked on the next block's rows, reduced again, is R of all of
   them (up to signs), so memory holds one block, and triangles of parts (a stream's blocks, a
   cluster's partitions) merge. (x0, y0) is one row of the data: subtracting it first costs a large
   common offset (columns like 10⁸ + noise) none of the noise's digits. With the ones column first,
   R's lower-right block is the triangle of the centred rows.
2. `Fit`: W solves the centred triangle's system by back substitution, and the intercept the first
   row's; without an intercept, the triangle of [x, y] itself comes from R with no further pass. A
   rank-deficient design (a column that is a combination of others) has many optima: it gets the
   one of least norm, from the small triangle's singular values, and says so (`unique`).
3. `Fit.refined`: one step of iterative refinement, taken where QR's solution may have left digits
   to gain (`Fit.worth_refining`): the residual r = y − ŷ over the rows, computed from the values
   as given with every difference, product and sum carried as two doubles (`_residuals`, about 32
   digits), and the correction δ that best fits it, from the triangle of [X̃, r] gathered in the
   same pass (R·δ = Qᵀr, Q never formed). The intercept is computed from W and the part of the
   correction below W's last digit, summed exactly: it feels W's errors |x0|-fold. L* is Σ r² less
   ||Qᵀr||², from the same pass. Measured on the exact designs of tests/test_reference.py (digits
   of the worst coefficient): a double-precision residual gains one or two (degree 5: 9.4 → 10.6),
   np.longdouble's 64-bit significand up to five and then stalls (degree 10 on −10…10: 6.4 →
   11.0), two doubles give every digit (17); a second step gains nothing; the cheaper correction
   from the semi-normal equations (RᵀR·δ = X̃ᵀr) loses digits once κ² passes 1/u (NIST's Filip:
   8.1 → 7.6, where the triangle's correction gives 8.4).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from babynn_cli.core.threads import blas_threads

# Bytes of rows reduced at a time (`block_rows`): a block of about 1 MB stays in a core's cache.
# Householder QR of 4·10⁵ rows on two cores, by rows per block: 12 columns 0.042, 0.040, 0.044,
# 0.070 s at 2¹², 2¹³, 2¹⁴, 2¹⁵; 32 columns 0.150, 0.154, 0.215 s at 2¹¹, 2¹², 2¹³; 102 columns
# 0.89, 0.83, 0.88, 1.31 s at 2⁹, 2¹⁰, 2¹¹, 2¹²; 302 columns (10⁵ rows) 1.38, 1.14, 1.06, 1.07 s
# at 2⁸ … 2¹¹, where R itself (q × q) is most of a block.
TRIANGLE_BYTES = 1 << 20
MAX_BLOCK_ROWS = 1 << 13  # (a block of 4,096 features is then 268 MB, beside R's 134 MB)
# A feature whose unit passes this (or falls below its inverse) has the moments kept in its unit:
# 2²⁵⁶ ≈ 1.2e77, whose square is far inside double precision, and so are products of a few.
EXTREME_UNIT = 2.0**256
PART_BLOCKS = 8  # a thread of its own only for parts of at least this many blocks
# Refine when R's condition number (columns equilibrated) is at least this: below it QR's solution
# already holds all but the last digit or two (its error is about κ·u, u = 1.1e-16).
REFINE_FROM = 100.0
# A singular value of the equilibrated triangle below this fraction of the largest is zero: the
# design is rank-deficient to working precision.
RANK_TOLERANCE = 1e-13


@dataclass(frozen=True)
class LeastSquares:
    """W: (m, n), w0: (n,) in the coordinates of the X given; loss L* on that data."""

    W: np.ndarray
    w0: np.ndarray
    loss: float
    unique: bool = True  # False: collinear features, and W is the optimum of least norm


Shift = tuple[np.ndarray, np.ndarray]  # (x0, y0): one row, subtracted from every row
Units = tuple[np.ndarray, np.ndarray]  # (ux, uy): powers of two, each column divided by its own


@dataclass(frozen=True)
class Triangle:
    """R, (1 + m + n) square and upper triangular, of the rows [1, (x − x0)/ux, (y − y0)/uy]
    seen so far. The units are powers of two near each column's size (dividing by them is exact),
    so that no product overflows for any finite data whose squares are finite."""

    R: np.ndarray
    shift: Shift
    units: Units

    @classmethod
    def of(
        cls, X: np.ndarray, Y: np.ndarray, shift: Shift, units: Units, threads: int = 1
    ) -> Triangle:
        """The triangle of these rows, reduced a block at a time on one BLAS thread
        (OpenBLAS's own threads slow these thin blocks down: 0.068 s against 0.092 s for 10⁶ × 12
        rows). With `threads` > 1 and rows enough, the rows are cut into that many parts, each
        reduced on a thread of its own (numpy's QR lets other threads run), and the parts'
        triangles merged as blocks are."""
        rows = block_rows(1 + X.shape[1] + Y.shape[1])
        parts = max(1, min(threads, len(X) // (PART_BLOCKS * rows)))
        cuts = np.linspace(0, len(X), parts + 1).astype(int)

        def part(lo: int, hi: int) -> np.ndarray:
            return _reduce(X[lo:hi], Y[lo:hi], shift, units)

        with blas_threads(1):
            if parts == 1:
                return cls(part(0, len(X)), shift, units)
            with ThreadPoolExecutor(parts) as pool:
                triangles = list(pool.map(part, cuts[:-1], cuts[1:]))
        return cls(_triangle(np.vstack(triangles)), shift, units)

    def merged(self, other: Triangle | None) -> Triangle:
        """These rows and `other`'s together (the same shift and units)."""
        if other is None:
            return self
        return Triangle(_triangle(np.vstack([other.R, self.R])), self.shift, self.units)

    def moments(self, n_rows: int, x_unit: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """x̄, ȳ and the centred xx, xy, yy (divided by N) of the rows: R's first row holds
        the means (R[0, 0] = ±√N), the rest is the centred rows' triangle B, BᵀB their sums of
        products. With `x_unit` (`feature_unit`), of the features x / x_unit."""
        (x0, y0), (ux, uy) = self.shift, self.units
        m = len(x0)
        u = np.concatenate([ux, uy])
        mean = np.concatenate([x0, y0]) + self.R[0, 1:] / self.R[0, 0] * u
        if x_unit is not None:
            u[:m] /= x_unit
            mean[:m] /= x_unit
        B = self.R[1:, 1:] / math.sqrt(n_rows)
        with np.errstate(over="ignore"):  # past double precision: inf, checked by callers
            C = ((B.T @ B) * u[:, None]) * u[None, :]  # not u·uᵀ first: it may overflow alone
        return mean[:m], mean[m:], C[:m, :m], C[:m, m:], C[m:, m:]

    def feature_unit(self) -> np.ndarray | None:
        """Each feature's power-of-two unit when some feature's values are so large or so small
        (beyond about 1e77 or below 1e-77 in spread) that their squares would leave double
        precision: the moments are then kept for x / unit, exactly (`core.moments`). None for
        every other data set, which keeps its raw units."""
        ux = self.units[0]
        if np.all((ux <= EXTREME_UNIT) & (ux >= 1 / EXTREME_UNIT)):
            return None
        return ux.copy()

    def fit(self, intercept: bool, n_rows: int) -> Fit:
        """The least-squares fit from the triangle alone (before refinement)."""
        (x0, y0), (ux, uy) = self.shift, self.units
        m, n = len(x0), len(y0)
        R = self.R
        if intercept:
            # the ones column first, so R[1:, 1:] is the centred rows' triangle
            factor = _Factor.of(R[1 : 1 + m, 1 : 1 + m], ux)
            W = factor.solve(R[1 : 1 + m, 1 + m :])
            x_bar = R[0, 1 : 1 + m] / R[0, 0]  # the mean of (x − x0)/ux
            c = R[0, 1 + m :] / R[0, 0] - x_bar @ W  # the mean of (y − y0)/uy, less x̄ᵀW
            return Fit(self, W, c, True, factor, n_rows)
        # [x/ux, y/uy] = [1, (x − x0)/ux, (y − y0)/uy]·S, S = [[x0/ux, y0/uy], [I, 0], [0, I]]
        S = np.zeros((1 + m + n, m + n))
        S[0, :m], S[0, m:] = x0 / ux, y0 / uy
        S[1:, :] = np.eye(m + n)
        raw = _triangle(R @ S)
        factor = _Factor.of(raw[:m, :m], ux)
        W = factor.solve(raw[:m, m:])
        return Fit(self, W, np.zeros(n), False, factor, n_rows)


@dataclass(frozen=True)
class Fit:
    """A least-squares fit in the triangle's units: (ŷ − y0)/uy = c + ((x − x0)/ux)ᵀW with an
    intercept, ŷ/uy = (x/ux)ᵀW without; `W` and `w0` give it for the raw x."""

    triangle: Triangle
    W_units: np.ndarray  # (m, n)
    c: np.ndarray  # (n,)
    intercept: bool
    factor: _Factor  # the triangle W was solved with (of the centred x with an intercept)
    n_rows: int
    # what refinement found of W below its last digit: W_units + residue is W more exactly than a
    # double holds, and the intercept is computed from it (it feels W's last digits x0-fold)
    residue: np.ndarray | None = None

    @property
    def W(self) -> np.ndarray:
        """The weights for the raw x: W·uy/ux (powers of two: exact)."""
        ux, uy = self.triangle.units
        return self.W_units * uy / ux[:, None]

    @property
    def w0(self) -> np.ndarray:
        """The intercept for the raw x: y0 + uy·c − x0ᵀW, summed exactly, then rounded once."""
        (x0, y0), (_, uy) = self.triangle.shift, self.triangle.units
        if not self.intercept:
            return np.zeros_like(y0)
        ux = self.triangle.units[0]
        parts = [self.W]
        if self.residue is not None:
            parts.append(self.residue * uy / ux[:, None])
        return np.array(
            [
                math.fsum(
                    [y0[j], uy[j] * self.c[j]]
                    + [p for W in parts for p in _exact_products(-x0, W[:, j])]
                )
                for j in range(len(y0))
            ]
        )

    @property
    def unique(self) -> bool:
        """Whether this is the only optimum (the design has full rank)."""
        return self.factor.full_rank

    @property
    def worth_refining(self) -> bool:
        """Whether QR's solution may have left digits that refinement recovers: κ·A ≥
        REFINE_FROM, κ the condition number of the triangle W was solved with, A how much more
        the intercept feels W's errors than its own size (|x0|ᵀ|W| / |w0|; 1 without one)."""
        if not self.factor.full_rank:
            return False
        amplification = 1.0
        if self.intercept:
            x0 = self.triangle.shift[0]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = (np.abs(x0) @ np.abs(self.W)) / np.abs(self.w0)
            amplification = max(1.0, float(np.nanmax(ratio, initial=1.0)))
        return self.factor.condition * amplification >= REFINE_FROM

    def terms(self, X: np.ndarray, Y: np.ndarray, refine: bool) -> Terms:
        """This block's share of the second pass: Σ r² of the residual r = y − ŷ (in the
        targets' units) and, to refine, the triangle of [X̃, r] (X̃ = [1, (x − x0)/ux] with an
        intercept, x/ux without), with r computed from the raw values to about twice double
        precision (`_residuals`)."""
        (x0, _), (ux, uy) = self.triangle.shift, self.triangle.units
        W = self.W  # in the raw units: the residual is computed from the values as they are
        if self.intercept:
            r = _residuals(X, Y, self.triangle.shift, self.c * uy, W, exact=refine) / uy
            Xu = (X - x0) / ux
        else:
            zero = (np.zeros_like(x0), np.zeros(Y.shape[1]))
            r = _residuals(X, Y, zero, np.zeros(Y.shape[1]), W, exact=refine) / uy
            Xu = X / ux
        sse = np.einsum("ij,ij->j", r, r)
        if not refine:
            return Terms(sse, None)
        design = [np.ones((len(X), 1))] if self.intercept else []
        return Terms(sse, _triangle(np.hstack([*design, Xu, r])))

    def losses(self, terms: Terms) -> np.ndarray:
        """Each output's loss at this fit, from all the rows' `terms`: Σ r²/N in the targets'
        units."""
        uy = self.triangle.units[1]
        with np.errstate(over="ignore"):
            return terms.sse / self.n_rows * uy * uy

    def refined(self, terms: Terms) -> tuple[Fit, np.ndarray]:
        """One step of refinement from all the rows' `terms`: the correction δ that best fits
        the residual, min ||r − X̃δ||, from the triangle of [X̃, r] (R δ = Qᵀr, Q never formed),
        and each output's loss at the refined fit, (Σ r² − ||Qᵀr||²)/N: no further pass."""
        assert terms.R is not None
        p = len(self.W_units) + int(self.intercept)
        z = terms.R[:p, p:]  # Qᵀr
        delta = np.linalg.solve(terms.R[:p, :p], z)  # triangular: back substitution
        dc, dW = (delta[0], delta[1:]) if self.intercept else (np.zeros_like(self.c), delta)
        W = self.W_units + dW
        residue = (self.W_units - (W - (W - self.W_units))) + (dW - (W - self.W_units))  # exact
        fit = replace(self, W_units=W, c=self.c + dc, residue=residue)
        left = np.maximum(terms.sse - np.einsum("ij,ij->j", z, z), 0.0)
        return fit, fit.losses(Terms(left, None))


@dataclass(frozen=True)
class Terms:
    """A second pass's share of a fit: each output's Σ r², and when refining the triangle of
    [X̃, r]; shares of blocks and partitions merge."""

    sse: np.ndarray
    R: np.ndarray | None

    def merged(self, other: Terms | None) -> Terms:
        if other is None:
            return self
        R = None if self.R is None or other.R is None else _triangle(np.vstack([other.R, self.R]))
        return Terms(self.sse + other.sse, R)


@dataclass(frozen=True)
class _Factor:
    """A small triangle T to solve with: by back substitution when it has full rank, by its
    singular values (the minimum-norm solution) when it has not. Rank and condition number are
    read with the columns equilibrated (unit norms: a feature's units say nothing of rank)."""

    T: np.ndarray
    full_rank: bool
    condition: float  # κ of T with equilibrated columns (inf when rank-deficient)
    svd: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # of T·diag(units), rank-deficient
    rank: int
    units: np.ndarray

    @classmethod
    def of(cls, T: np.ndarray, units: np.ndarray) -> _Factor:
        """T: the triangle of columns in `units` (x/units): the least norm is the raw x's."""
        norms = np.sqrt(np.einsum("ij,ij->j", T, T))
        D = 1.0 / np.where(norms > 0, norms, 1.0)
        s = np.linalg.svd(T * D, compute_uv=False)
        top = s[0] if len(s) and s[0] > 0 else 1.0
        rank = int(np.sum(s > RANK_TOLERANCE * top))
        full = rank == len(s)
        condition = float(top / s[-1]) if full and len(s) else math.inf
        if full:
            return cls(T, full, condition, None, rank, units)
        return cls(T, full, condition, np.linalg.svd(T * units), rank, units)

    def solve(self, B: np.ndarray) -> np.ndarray:
        """T⁻¹B; for a rank-deficient T, the least-squares solution of least norm in the raw
        units (T·diag(units)'s, scaled back)."""
        if self.svd is None:
            return np.linalg.solve(self.T, B)  # triangular: no pivoting, back substitution
        U, s, Vt = self.svd
        k = self.rank
        return self.units[:, None] * (Vt[:k].T @ ((U[:, :k].T @ B) / s[:k, None]))


def units_near(values: np.ndarray) -> np.ndarray:
    """Per column, a power of two near |value| (1 for zero)."""
    exponent = np.frexp(np.where(values != 0, np.abs(values), 1.0))[1]
    return np.ldexp(1.0, exponent)


def block_rows(q: int) -> int:
    """Rows of q columns reduced at a time: a power of two near TRIANGLE_BYTES of them (below),
    and at least twice q, so the triangle carried from block to block is not most of the work;
    at most MAX_BLOCK_ROWS."""
    fits = TRIANGLE_BYTES // (8 * q)
    rows = max(1 << max(fits.bit_length() - 1, 0), 1 << (2 * q - 1).bit_length())
    return min(rows, MAX_BLOCK_ROWS)


def _reduce(X: np.ndarray, Y: np.ndarray, shift: Shift, units: Units) -> np.ndarray:
    """R of the rows [1, (x − x0)/ux, (y − y0)/uy], `block_rows` at a time."""
    m, q = X.shape[1], 1 + X.shape[1] + Y.shape[1]
    R = np.zeros((0, q))
    step = block_rows(q)
    for lo in range(0, len(X), step):
        Xb, Yb = X[lo : lo + step], Y[lo : lo + step]
        rows = np.empty((len(R) + len(Xb), q))
        rows[: len(R)] = R
        block = rows[len(R) :]
        block[:, 0] = 1.0
        np.subtract(Xb, shift[0], out=block[:, 1 : 1 + m])
        np.subtract(Yb, shift[1], out=block[:, 1 + m :])
        block[:, 1:] /= np.concatenate(units)
        R = _triangle(rows)
    return R if len(R) else np.zeros((q, q))


def _triangle(rows: np.ndarray) -> np.ndarray:
    """R of Householder QR, square (padded with zero rows when there are fewer rows)."""
    q = rows.shape[1]
    R: np.ndarray = np.asarray(np.linalg.qr(rows, mode="r"))
    if R.shape[0] < q:
        R = np.vstack([R, np.zeros((q - R.shape[0], q))])
    return R


def _residuals(
    X: np.ndarray, Y: np.ndarray, shift: Shift, c: np.ndarray, W: np.ndarray, exact: bool
) -> np.ndarray:
    """r = (y − y0) − c − (x − x0)ᵀW for each row, (N, n): with `exact`, every difference,
    product and sum is carried as two doubles (error-free transformations: Knuth's sum, Dekker's
    product) and r is rounded once at the end, good to about 32 digits before that rounding
    (Ogita, Rump and Oishi's Dot2); otherwise in plain double precision."""
    x0, y0 = shift
    if not exact:
        return (Y - y0) - c - (X - x0) @ W
    s, e = _two_sum(Y, -y0)  # y − y0 as s + e, exactly
    s, t = _two_sum(s, -c)
    e = e + t
    for j in range(X.shape[1]):
        d, de = _two_sum(X[:, j : j + 1], -x0[j])  # x − x0 as d + de, exactly
        p, pe = _two_product(d, -W[j])
        s, t = _two_sum(s, p)
        e = e + (t + pe - de * W[j])  # de·W's own rounding is a double's square below
    return s + e


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a + b = s + e exactly (Knuth)."""
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a·b = p + e exactly (Dekker, with Veltkamp's split of each factor into halves whose
    products are exact)."""
    a1, a2 = _halves(a)
    b1, b2 = _halves(b)
    p = a * b
    return p, ((a1 * b1 - p) + a1 * b2 + a2 * b1) + a2 * b2


def _halves(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = 134217729.0 * v  # 2²⁷ + 1
    hi = t - (t - v)
    return hi, v - hi


def _exact_products(a: np.ndarray, b: np.ndarray) -> list[float]:
    """The products a·b, each as two doubles that add up to it exactly."""
    p, e = _two_product(a, b)
    return [*p.tolist(), *e.tolist()]
