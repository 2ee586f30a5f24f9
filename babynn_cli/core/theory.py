"""What theory says about full-batch gradient descent on the affine model with squared loss.

The loss is quadratic in W̃ = [W; w0ᵀ] with Hessian H = (2/N) X̃ᵀX̃ (X̃ the features with a column
of ones when there is an intercept). In H's eigenbasis each component of the error e = W̃ − W̃*
shrinks by (1 − ηλᵢ) an epoch at a constant rate η, and L − L* = ½ Σᵢ λᵢ cᵢ² (c = Vᵀe, summed over
outputs). So gradient descent converges exactly when η < 2/λmax, fastest at η = 2/(λmax + λmin),
and the gap after t epochs is ½ Σᵢ λᵢ (1 − ηλᵢ)^(2t) cᵢ(0)², which predicts epochs exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

PREDICTION_CHUNK = 1024  # epochs whose gaps are computed at once when predicting
FAR = 10**15  # predictions past the epochs babynn runs unasked, for advice (a search: cheap)
# Eigenvalues below this fraction of λmax are zero to rounding: H is singular (collinear features)
SINGULAR = 1e-12


def four_digits_down(lr: float) -> float:
    """`lr` rounded down to four significant digits: a rate a user can type, never above the
    one theory names."""
    if not np.isfinite(lr) or lr <= 0:
        return lr
    power = int(np.floor(np.log10(lr))) - 3
    count = float(np.floor(lr / 10.0**power))  # four digits, rounded down ...
    # ... and the double nearest count·10^power (a product of doubles would miss it)
    return count / 10.0**-power if power < 0 else count * 10.0**power


@dataclass(frozen=True)
class Curvature:
    """H = (2/N) X̃ᵀX̃ in its eigenbasis: eigenvalues λ (ascending, ≥ 0) and eigenvectors V.

    From rows (`of_rows`, when there are fewer rows than columns) only the eigenvalues that can be
    non-zero are kept, with their eigenvectors: the others change no loss, so nothing theory says
    depends on them."""

    eigenvalues: np.ndarray  # (r,)
    eigenvectors: np.ndarray  # (p, r); for softmax (p·k, r), the weights stacked class by class
    rank_deficient: bool = False  # some eigenvalues (not kept) are zero
    # Cross-entropy (`core.classify`): the eigenvalues are the Hessian's at the optimum, and
    # `bound` is λmax's bound for any weights, which sets the stable rates; `expected_zeros` are
    # the directions softmax's outputs always leave free (all classes moved alike)
    bound: float | None = None
    expected_zeros: int = 0

    @classmethod
    def of(cls, gram: np.ndarray) -> Curvature:
        """From gram = X̃ᵀX̃ / N: O(p³)."""
        lam, V = np.linalg.eigh(2.0 * gram)
        # rounding can make a singular H's smallest eigenvalue negative
        return cls(np.maximum(lam, 0.0), V)

    @classmethod
    def of_rows(cls, rows: np.ndarray) -> Curvature:
        """From X̃ (N, p) itself when N < p: X̃X̃ᵀ (N × N) has the non-zero eigenvalues of X̃ᵀX̃,
        and V = X̃ᵀU/√λ its eigenvectors: O(N²p) instead of O(p³)."""
        N = len(rows)
        lam, U = np.linalg.eigh(2.0 / N * (rows @ rows.T))
        keep = lam > SINGULAR * max(float(lam[-1]), np.finfo(float).tiny)
        lam, U = lam[keep], U[:, keep]
        V = rows.T @ U * np.sqrt(2.0 / N) / np.sqrt(lam)
        return cls(lam, V, rank_deficient=True)

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalues[-1])

    @property
    def singular(self) -> bool:
        """Collinear features: some direction of the weights changes nothing, so the optimum is
        not unique (every weight vector on a line, a plane, ... reaches the same L*)."""
        zeros = int((self.eigenvalues <= SINGULAR * self.lambda_max).sum())
        return self.rank_deficient or zeros > self.expected_zeros

    @property
    def lambda_min(self) -> float:
        """The smallest eigenvalue that is not zero: the directions that zero ones leave alone do
        not change the loss, so the rates and epochs of theory are set by this one."""
        nonzero = self.eigenvalues[self.eigenvalues > SINGULAR * self.lambda_max]
        return float(nonzero[0]) if nonzero.size else self.lambda_max

    @property
    def exact(self) -> bool:
        """Whether the loss is the quadratic this curvature describes everywhere (squared error),
        or only near the optimum, with a bound elsewhere (cross-entropy)."""
        return self.bound is None

    @property
    def stable_lr(self) -> float:
        """The stability bound 2/λmax: constant rates below it converge at full batch; for
        cross-entropy 2/(λmax's bound), below which the loss never rises, from any weights."""
        top = self.lambda_max if self.bound is None else self.bound
        return 2.0 / top if top > 0 else float("inf")

    @property
    def best_lr(self) -> float:
        """2/(λmax + λmin): the constant rate that converges fastest at full batch."""
        return 2.0 / (self.lambda_max + self.lambda_min) if self.lambda_max > 0 else float("inf")

    @property
    def fastest_safe_lr(self) -> float:
        """η* where it is below the stable bound: always for squared error; for cross-entropy the
        local η* can pass the bound that holds far from the optimum."""
        return min(self.best_lr, self.stable_lr)

    @property
    def suggested_lr(self) -> float:
        """η* = 2/(λmax + λmin) rounded down to four significant digits: the one rate babynn
        suggests for this data wherever it prints one (never above η*, so never past 2/λmax)."""
        return four_digits_down(self.fastest_safe_lr)

    @property
    def condition_number(self) -> float:
        """κ = λmax/λmin over the non-zero eigenvalues (inf when H is zero)."""
        return self.lambda_max / self.lambda_min if self.lambda_min > 0 else float("inf")

    def in_range(self, weights: np.ndarray) -> np.ndarray:
        """W̃ (p, n) less its part along H's zero eigenvalues, which no gradient ever changes
        (each gradient is X̃ᵀ(…), in H's range)."""
        if not self.singular:
            return weights
        keep = self.eigenvalues > SINGULAR * self.lambda_max
        V = self.eigenvectors[:, keep]
        return V @ (V.T @ weights)

    def excess_loss(self, error: np.ndarray) -> float:
        """L − L* of weights whose error from the optimum is `error` = W̃ − W̃*: (p, n)."""
        return float(self._shares(error).sum())

    def epochs_to_reach(
        self, error: np.ndarray, lr: float, target: float, max_epochs: int = 10**6
    ) -> int | None:
        """The first t with L − L* ≤ target after t epochs at constant rate `lr`, starting from
        `error` = W̃ − W̃*; None when that takes more than max_epochs (or never comes)."""
        shares = self._shares(error)
        factor = (1.0 - lr * self.eigenvalues) ** 2

        def gap(t: float) -> float:
            return float((shares * factor**t).sum())

        if (factor[shares > 0] <= 1.0).all():  # the gap never rises: search, don't scan
            if gap(0) <= target:
                return 0
            if gap(max_epochs) > target:
                return None
            lo, hi = 0, 1  # gap(lo) > target ≥ gap(hi)
            while gap(hi) > target:
                lo, hi = hi, min(2 * hi, max_epochs)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if gap(mid) > target else (lo, mid)
            return hi
        t = np.arange(0, PREDICTION_CHUNK, dtype=float)
        while t[0] <= max_epochs:
            gaps = (shares[None, :] * factor[None, :] ** t[:, None]).sum(axis=1)
            hit = np.flatnonzero(gaps <= target)
            if hit.size:
                return int(t[hit[0]])
            t = t + len(t)
        return None

    # -- momentum (heavy ball) and Nesterov at full batch ------------------------------------
    #
    # With velocity v, each eigen-component e of the error follows a 2 × 2 linear recurrence:
    # heavy ball v' = βv − ηλe, e' = e + v'; Nesterov v' = βv − ηλe, e' = e + βv' − ηλe. From
    # e(0) = c, v(0) = 0, e(t) = a(t)·c with a(t) the recurrence's own, so L − L* after t epochs
    # is Σᵢ ½λᵢcᵢ²·aᵢ(t)²: exact, epoch by epoch, as plain descent's is.

    def momentum_stable_lr(self, beta: float, nesterov: bool = False) -> float:
        """The largest stable constant rate with momentum β (0 ≤ β < 1): every root of the
        recurrence inside the unit circle iff ηλmax < 2(1 + β) (heavy ball) or
        2(1 + β)/(1 + 2β) (Nesterov)."""
        top = 2.0 * (1.0 + beta) / (1.0 + 2.0 * beta if nesterov else 1.0)
        return top / self.lambda_max if self.lambda_max > 0 else float("inf")

    def polyak(self) -> tuple[float, float]:
        """Polyak's optimal heavy-ball pair: η = 4/(√λmax + √λmin)², β = ((√κ − 1)/(√κ + 1))²,
        whose error contracts by (√κ − 1)/(√κ + 1) an epoch, against plain descent's
        (κ − 1)/(κ + 1) at η*."""
        hi, lo = np.sqrt(self.lambda_max), np.sqrt(self.lambda_min)
        root = np.sqrt(self.condition_number)
        return float(4.0 / (hi + lo) ** 2), float(((root - 1.0) / (root + 1.0)) ** 2)

    def momentum_rate(self, beta: float, nesterov: bool = False) -> float:
        """The rate theory sets beside a momentum β: heavy ball (1 + √β)²/λmax, the largest at
        which λmax's direction contracts by √β an epoch (Polyak's η when β is Polyak's);
        Nesterov 1/λmax."""
        if self.lambda_max <= 0:
            return float("inf")
        top = 1.0 if nesterov else (1.0 + np.sqrt(beta)) ** 2
        return float(top / self.lambda_max)

    def momentum_gaps(
        self, error: np.ndarray, lr: float, beta: float, epochs: int, nesterov: bool = False
    ) -> np.ndarray:
        """L − L* after 0, 1, ..., `epochs` epochs at a constant rate with momentum β."""
        steps = self._momentum_steps(error, lr, beta, nesterov)
        return np.array([next(steps) for _ in range(epochs + 1)])

    def momentum_epochs_to_reach(
        self,
        error: np.ndarray,
        lr: float,
        beta: float,
        target: float,
        max_epochs: int = 10**6,
        nesterov: bool = False,
    ) -> int | None:
        """The first t with L − L* ≤ target with momentum (see `momentum_gaps`); None past
        `max_epochs` or when the rate is not stable. The gap need not fall every epoch (it
        oscillates), so the epochs are scanned."""
        if lr >= self.momentum_stable_lr(beta, nesterov) or not 0.0 <= beta < 1.0:
            return None
        steps = self._momentum_steps(error, lr, beta, nesterov)
        for t in range(max_epochs + 1):
            if next(steps) <= target:
                return t
        return None

    def _momentum_steps(
        self, error: np.ndarray, lr: float, beta: float, nesterov: bool
    ) -> Iterator[float]:
        """L − L* epoch after epoch from `error` (velocity 0): each eigen-component's 2 × 2
        recurrence (see above), a(0) = 1, b(0) = 0."""
        shares = self._shares(error)
        a, b = np.ones_like(shares), np.zeros_like(shares)
        h = lr * self.eigenvalues
        yield float(shares.sum())
        with np.errstate(over="ignore", invalid="ignore"):  # past the bound: inf
            while True:
                b = beta * b - h * a
                a = a + (beta * b - h * a if nesterov else b)
                yield float((shares * a * a).sum())

    def _shares(self, error: np.ndarray) -> np.ndarray:
        """Each eigen-component's share ½ λᵢ cᵢ² of L − L*."""
        if self.eigenvectors.shape[0] != error.shape[0]:  # softmax: the classes stacked
            error = error.reshape(-1, 1, order="F")
        c = self.eigenvectors.T @ error  # (p, n): the error in the eigenbasis
        return 0.5 * self.eigenvalues * (c**2).sum(axis=1)
