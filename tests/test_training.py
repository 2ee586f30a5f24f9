"""The training loop: convergence to np.linalg.lstsq, stopping rules, divergence, Ctrl-C."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from babynn_cli.core.fitted import fit, train_problem
from babynn_cli.core.problem import WarmStart, initial_params, make_problem
from babynn_cli.core.schedules import make_schedule
from babynn_cli.core.stopping import StopReason
from babynn_cli.core.train import TrainSettings


def linear_data(N=200, m=3, n=1, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, m)) * rng.uniform(0.5, 5, size=m) + rng.normal(size=m)
    W = rng.normal(size=(m, n))
    Y = X @ W + 1.5 + noise * rng.normal(size=(N, n))
    return X, Y


def reference(X, Y):
    design = np.column_stack([X, np.ones(len(X))])
    sol = np.linalg.lstsq(design, Y, rcond=None)[0]
    return sol[:-1], sol[-1]


def run(X, Y, lr=0.3, schedule="constant", seed=0, settings=None, **problem_kw):
    problem = make_problem(X, Y, seed=seed, **problem_kw)
    params = initial_params(problem, seed)
    settings = settings or TrainSettings(epochs=2000, tol=0)
    sched = make_schedule(schedule, lr, total_updates=settings.epochs)
    return problem, fit(problem, params, sched, settings, seed)


def test_full_batch_reaches_the_least_squares_solution():
    X, Y = linear_data(n=2)
    _, fitted = run(X, Y)
    W, b = reference(X, Y)
    np.testing.assert_allclose(fitted.W, W, rtol=1e-10)
    np.testing.assert_allclose(fitted.bias, b, rtol=1e-10)


def test_raw_features_reach_the_same_solution_with_a_small_enough_rate():
    X, Y = linear_data(m=2)
    problem, _ = run(X, Y, standardize=False, settings=TrainSettings(epochs=1))
    lr = problem.curvature().best_lr
    _, fitted = run(X, Y, lr=lr, standardize=False, settings=TrainSettings(epochs=20000, tol=0))
    W, b = reference(X, Y)
    np.testing.assert_allclose(fitted.W, W, rtol=1e-7)
    np.testing.assert_allclose(fitted.bias, b, rtol=1e-7)


def test_no_intercept_reaches_the_least_squares_solution_through_the_origin():
    X, Y = linear_data()
    _, fitted = run(X, Y, intercept=False)
    W = np.linalg.lstsq(X, Y, rcond=None)[0]
    np.testing.assert_allclose(fitted.W, W, rtol=1e-10)
    assert not fitted.bias.any()


def test_minibatch_sgd_gets_close_and_is_deterministic():
    X, Y = linear_data(N=500, noise=0.01)
    settings = TrainSettings(epochs=200, batch_size=16, tol=0)
    _, a = run(X, Y, lr=0.05, schedule="inverse", settings=settings)
    _, b = run(X, Y, lr=0.05, schedule="inverse", settings=settings)
    W, _ = reference(X, Y)
    np.testing.assert_allclose(a.W, W, rtol=1e-2)
    assert np.array_equal(a.W, b.W) and np.array_equal(a.bias, b.bias)
    _, c = run(X, Y, lr=0.05, schedule="inverse", settings=settings, seed=1)
    assert not np.array_equal(a.W, c.W)


def test_tol_stops_when_the_loss_stops_improving():
    X, Y = linear_data()
    _, fitted = run(X, Y, settings=TrainSettings(epochs=5000, tol=1e-10, patience=5))
    assert fitted.end.stop_reason is StopReason.TOL
    assert fitted.end.epochs_run < 5000
    losses = fitted.history.train_loss[:, 0]
    tail = losses[-6:]
    assert np.all((tail[:-1] - tail[1:]) <= 1e-10 * tail[:-1])


@pytest.mark.parametrize("factor", [0.98, 1.02])
def test_divergence_edge_is_two_over_lambda_max(factor):
    X, Y = linear_data()
    problem, _ = run(X, Y, settings=TrainSettings(epochs=1))
    lr = factor * problem.curvature().stable_lr
    _, fitted = run(X, Y, lr=lr, settings=TrainSettings(epochs=3000, tol=0))
    diverged = fitted.end.stop_reason is StopReason.DIVERGED
    assert diverged == (factor > 1)
    if diverged:
        assert fitted.end.diverged_lr == pytest.approx(lr)


def test_huge_rate_diverges_on_the_first_epochs_without_warnings():
    X, Y = linear_data()
    with np.errstate(all="raise"):
        _, fitted = run(X, Y, lr=1e6, settings=TrainSettings(epochs=100, batch_size=1))
    assert fitted.end.stop_reason is StopReason.DIVERGED
    assert fitted.end.diverged_epoch == 1


def test_validation_split_and_early_stopping_keep_the_best_epoch():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 30))  # more features than the rows can pin down: it overfits
    Y = X[:, :1] + rng.normal(size=(40, 1))
    settings = TrainSettings(epochs=3000, tol=1e-4, patience=20, early_stopping=True)
    problem, fitted = run(X, Y, lr=0.1, val_frac=0.25, settings=settings)
    assert (problem.n_train, problem.n_val) == (30, 10)
    result, history = fitted.end, fitted.history
    assert result.stop_reason is StopReason.EARLY_STOPPING
    best = int(np.argmin(history.val_loss[:, 0]))
    assert result.best_epoch == history.epoch[best]
    assert fitted.val_loss == pytest.approx(history.val_loss[best, 0], rel=1e-10)


def test_validation_split_is_seeded():
    X, Y = linear_data(N=50)
    a, _ = run(X, Y, val_frac=0.2, settings=TrainSettings(epochs=1))
    b, _ = run(X, Y, val_frac=0.2, settings=TrainSettings(epochs=1))
    c, _ = run(X, Y, val_frac=0.2, seed=9, settings=TrainSettings(epochs=1))
    assert np.array_equal(a.val.X, b.val.X)
    assert not np.array_equal(a.val.X, c.val.X)


def test_interrupt_keeps_the_last_finished_epoch():
    X, Y = linear_data()
    problem = make_problem(X, Y)
    params = initial_params(problem, 0)
    seen = []

    def on_epoch(info):
        seen.append(info.epoch)
        if info.epoch == 7:
            raise KeyboardInterrupt

    fitted = fit(
        problem, params, make_schedule("constant", 0.1), TrainSettings(epochs=100), 0, on_epoch
    )
    assert fitted.end.stop_reason is StopReason.INTERRUPTED
    assert fitted.end.epochs_run == 7
    assert fitted.train_loss == pytest.approx(fitted.history.train_loss[-1, 0], rel=1e-10)


def test_warm_start_from_the_optimum_stays_there():
    X, Y = linear_data()
    W, b = reference(X, Y)
    problem = make_problem(X, Y)
    saved = WarmStart({"W": W, "w0": b}, np.zeros(3), np.ones(3))  # raw units: no scaling
    params = initial_params(problem, 0, warm_start=saved)
    fitted = fit(problem, params, make_schedule("constant", 0.1), TrainSettings(epochs=3), 0)
    np.testing.assert_allclose(fitted.W, W, rtol=1e-9)
    assert fitted.history.train_loss[0, 0] == pytest.approx(fitted.train_loss, rel=1e-9)


def test_too_few_rows():
    from babynn_cli.core.problem import ProblemError

    X, Y = linear_data(N=3)
    with pytest.raises(ProblemError, match="1 training row"):
        make_problem(X, Y, val_frac=0.5)


@pytest.mark.parametrize(
    ("schedules", "settings", "val_frac"),
    [
        # rates that converge at different epochs, one at the edge, two that diverge
        ((0.01, 0.1, 0.5, 0.95, 1.05, 3.0), TrainSettings(epochs=700, tol=1e-12, patience=4), 0),
        ((0.05, 0.3), TrainSettings(epochs=300, tol=1e-3, patience=10, early_stopping=True), 0.3),
        ((0.002, 0.02, 0.5), TrainSettings(epochs=30, batch_size=7, tol=1e-6, patience=3), 0),
    ],
)
def test_blocks_of_epochs_give_what_one_epoch_at_a_time_gives(
    monkeypatch, schedules, settings, val_frac
):
    """The stopping rules read over a block of epochs at once decide as they do epoch by epoch."""
    train_module = sys.modules["babynn_cli.core.train"]  # the module, not the function

    X, Y = linear_data(N=120, m=4, n=2)
    problem = make_problem(X, Y, val_frac=val_frac)
    scale = 2 / problem.curvature().lambda_max  # rates as fractions of the stability bound
    scheds = [make_schedule("constant", f * scale) for f in schedules]
    params = initial_params(problem, 0)
    results = []
    for block in (1, train_module.MAX_BLOCK):
        monkeypatch.setattr(train_module, "MAX_BLOCK", block)
        monkeypatch.setattr(train_module, "BLOCK_SECONDS", 1e9 if block > 1 else 0)
        results.append(train_problem(problem, params, scheds, settings, 0))
    one, blocks = results
    assert one.runs == blocks.runs
    assert {r.stop_reason for r in one.runs} != {StopReason.MAX_EPOCHS}
    for name in one.params:
        assert np.array_equal(one.params[name], blocks.params[name])
    np.testing.assert_array_equal(one.history.train_loss, blocks.history.train_loss)


def test_memory_follows_the_epochs_run_not_the_epochs_asked_for():
    """--epochs 10⁷ on a run the --tol rule stops early allocates a history of what ran."""
    import tracemalloc

    X, Y = linear_data()
    problem = make_problem(X, Y)
    params = initial_params(problem, 0)
    tracemalloc.start()
    fitted = fit(problem, params, make_schedule("constant", 0.3), TrainSettings(epochs=10**7), 0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert fitted.end.stop_reason is StopReason.TOL and fitted.end.epochs_run < 1000
    assert peak < 5 * 2**20  # a preallocated history alone would be 3 × 10⁷ × 8 B = 229 MiB


def test_minibatch_training_holds_blas_to_one_thread_and_gives_it_back():
    """Small products run on one thread (benchmarks/threads.py: faster overall, above all beside
    a busy core); the thread count is restored after, and nothing changes where it cannot be
    told (no OpenBLAS found, or the user set OPENBLAS_NUM_THREADS)."""
    from babynn_cli.core import threads

    found = threads._openblas()
    if found is None:
        pytest.skip("no OpenBLAS to tell")
    _, get = found
    before = get()
    seen = []
    with threads.blas_threads(1):
        seen.append(get())
    assert seen == [1] and get() == before
    X, Y = linear_data(N=120, m=4, n=1)
    problem = make_problem(X, Y)
    counts = []
    train_problem(
        problem, initial_params(problem, 0), [make_schedule("constant", 0.01)],
        TrainSettings(epochs=3, batch_size=8, tol=0), 0, on_epoch=lambda info: counts.append(get()),
    )  # fmt: skip
    assert counts and set(counts) == {1} and get() == before


def test_ctrl_c_at_any_moment_of_the_loop_ends_the_runs_with_their_records_whole(descent_path):
    """SIGINT at 16 moments spread over the loop (inside an epoch, inside the stopping rules'
    bookkeeping, inside the progress callback): once the loop has begun, train returns with
    every run stopped as interrupted, its history consistent; it never raises."""
    import signal

    X, Y = linear_data(N=300, m=4)
    problem = make_problem(X, Y)
    params = initial_params(problem, 0)
    scheds = [make_schedule("constant", lr) for lr in (0.01, 0.1, 0.3)]
    settings = TrainSettings(epochs=10**7, batch_size=3, tol=0)
    before = signal.signal(signal.SIGALRM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        for delay in np.linspace(0.002, 0.1, 16):
            begun: list[int] = []
            signal.setitimer(signal.ITIMER_REAL, float(delay))
            try:
                result = train_problem(problem, params, scheds, settings, 0, on_epoch=begun.append)
            except KeyboardInterrupt:
                assert not begun, f"Ctrl-C after {delay:.3f} s escaped a loop that had begun"
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            assert {r.stop_reason for r in result.runs} == {StopReason.INTERRUPTED}
            h = result.history
            assert h.epoch[-1] == result.runs[0].epochs_run
            assert np.isfinite(h.train_loss[-1]).all()
    finally:
        signal.signal(signal.SIGALRM, before)
