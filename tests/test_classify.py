"""Classification: cross-entropy's gradients against finite differences, Newton's optimum against
scikit-learn's LogisticRegression, separable classes, --l2 against ridge's closed form, and the
commands on a text target (sample:iris)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLES, central_differences, run, run_json

from babynn_cli.core.affine import AffineModel
from babynn_cli.core.losses import class_probabilities, row_losses
from babynn_cli.core.mlp import MLP
from babynn_cli.core.problem import make_problem
from babynn_cli.core.vocabulary import stack

IRIS = SAMPLES / "iris.csv"


def one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[labels]


def targets_for(kind: str, labels: np.ndarray, k: int) -> np.ndarray:
    """Y as babynn learns it: the second class's 0/1 for the logistic loss, one-hot for softmax."""
    return labels[:, None].astype(float) if kind == "logistic" else one_hot(labels, k)


def overlapping(rows: int, m: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels drawn from a softmax of a random affine map: classes that overlap."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, m)) * rng.uniform(0.5, 3, size=m) + rng.normal(size=m)
    logits = X @ rng.normal(size=(m, k)) * 0.7
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(k, p=p) for p in P])
    return X, labels


# -- the losses and their gradients --------------------------------------------------------------


def test_the_losses_are_the_textbook_formulas_and_never_overflow():
    Z = np.array([[0.3], [-2.0], [40.0], [-800.0]])
    Y = np.array([[1.0], [0.0], [0.0], [1.0]])
    p = 1 / (1 + np.exp(-Z[:2, 0]))
    expected = -(Y[:2, 0] * np.log(p) + (1 - Y[:2, 0]) * np.log(1 - p))
    got = row_losses("logistic", Z, Y)
    np.testing.assert_allclose(got[:2], expected, rtol=1e-14)
    assert got[2] == pytest.approx(40.0) and got[3] == pytest.approx(800.0)  # −log σ(−z) → z
    Z3 = np.array([[1.0, 2.0, 0.5], [1000.0, 0.0, -1000.0]])
    Y3 = one_hot(np.array([1, 2]), 3)
    expected0 = -np.log(np.exp(2.0) / np.exp(Z3[0]).sum())
    got3 = row_losses("softmax", Z3, Y3)
    assert got3[0] == pytest.approx(expected0, rel=1e-14) and got3[1] == pytest.approx(2000.0)
    P = class_probabilities("softmax", Z3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-15)
    assert np.isfinite(P).all()


@pytest.mark.parametrize("kind", ["logistic", "softmax"])
@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("hidden", [(), (4, 3)])
def test_cross_entropy_gradients_match_central_finite_differences(kind, l2, hidden):
    rng = np.random.default_rng(7)
    k = 2 if kind == "logistic" else 4
    n = 1 if kind == "logistic" else k
    X = rng.normal(size=(11, 3))
    Y = targets_for(kind, rng.integers(0, k, size=11), k)
    model = (
        MLP(3, hidden, n, "tanh", loss=kind, l2=l2)
        if hidden
        else AffineModel(3, n, loss=kind, l2=l2)
    )
    params = model.init_params(rng)
    _, grads = model.losses_and_grads(stack(params, 1), X, Y)
    numeric = central_differences(lambda p: model.losses(stack(p, 1), X, Y)[0], params)
    for name in params:
        np.testing.assert_allclose(grads[name][0], numeric[name], rtol=1e-6, atol=1e-9)


# -- Newton's reference -------------------------------------------------------------------------


def sklearn_fit(Z: np.ndarray, labels: np.ndarray, alpha: float):
    """LogisticRegression on the standardised features Z: (1/N)Σℓ + α||W||² is its
    C·Σℓ + ½||w||² with C = 1/(2Nα)."""
    from sklearn.linear_model import LogisticRegression

    if alpha:
        learner = LogisticRegression(C=1 / (2 * len(Z) * alpha), tol=1e-14, max_iter=10_000)
    else:
        learner = LogisticRegression(C=np.inf, tol=1e-14, max_iter=10_000)
    learner.set_params(solver="newton-cholesky")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return learner.fit(Z, labels)


@pytest.mark.parametrize(("k", "alpha"), [(2, 0.0), (2, 0.01), (3, 0.0), (4, 0.02)])
def test_newtons_optimum_is_scikit_learns_logistic_regression(k, alpha):
    X, labels = overlapping(400, 4, k, seed=k)
    kind = "logistic" if k == 2 else "softmax"
    problem = make_problem(X, targets_for(kind, labels, k), loss=kind, l2=alpha)
    assert problem.has_optimum and not problem.separable
    W, w0, loss = problem.optimum
    Z = problem.train.standardized()
    theirs = sklearn_fit(Z, labels, alpha)
    P = theirs.predict_proba(Z)
    coef = theirs.coef_.T
    their_loss = -np.log(P[np.arange(len(Z)), labels]).mean() + alpha * (coef**2).sum()
    assert loss == pytest.approx(their_loss, rel=1e-10)
    assert loss <= their_loss + 1e-14  # Newton's is the minimum, to rounding
    ours = class_probabilities(kind, Z @ W + w0)
    np.testing.assert_allclose(ours, P, atol=1e-7)
    if k == 2 or alpha:  # unique weights (softmax's are free along all classes moved alike)
        if k > 2:  # the penalty makes scikit-learn's classes sum to zero, and ours
            coef = coef - coef.mean(axis=1, keepdims=True)
        np.testing.assert_allclose(W, coef, rtol=1e-6, atol=1e-7)


def test_the_stability_bound_holds_for_any_weights():
    """λmax of the cross-entropy Hessian (by finite differences of the gradient) at random weights
    never exceeds the bound babynn's stable rates come from; at the optimum it is the exact one."""
    X, labels = overlapping(200, 3, 3, seed=5)
    problem = make_problem(X, one_hot(labels, 3), loss="softmax", l2=0.05)
    model, Z, Y = problem.model, problem.train.standardized(), one_hot(labels, 3)
    curvature = problem.curvature()
    rng = np.random.default_rng(0)

    def hessian_max(params):
        flat = np.concatenate([params["W"].ravel(), params["w0"]])

        def grad(theta):
            p = {"W": theta[:9].reshape(3, 3), "w0": theta[9:]}
            g = model.losses_and_grads(stack(p, 1), Z, Y)[1]
            return np.concatenate([g["W"][0].ravel(), g["w0"][0]])

        h = 1e-5
        H = np.array([(grad(flat + h * e) - grad(flat - h * e)) / (2 * h) for e in np.eye(12)])
        return float(np.linalg.eigvalsh((H + H.T) / 2)[-1])

    for _ in range(5):
        params = {"W": rng.normal(0, 2, (3, 3)), "w0": rng.normal(0, 2, 3)}
        assert hessian_max(params) <= curvature.bound * (1 + 1e-6)
    W, w0, _ = problem.optimum
    assert hessian_max({"W": W, "w0": w0}) == pytest.approx(curvature.lambda_max, rel=1e-5)


def test_separable_classes_have_no_optimum_and_a_penalty_gives_one():
    rng = np.random.default_rng(3)
    apart = rng.normal(size=(60, 2)) + np.repeat([[4.0, 0.0], [-4.0, 0.0]], 30, axis=0)
    two = np.repeat([0, 1], 30)
    assert make_problem(apart, two[:, None].astype(float), loss="logistic").separable
    # one class apart, two overlapping: no hyperplane set classifies every row, still no minimum
    X, labels = overlapping(150, 2, 2, seed=9)
    X = np.vstack([X, rng.normal(size=(40, 2)) + np.array([30.0, 30.0])])
    labels = np.r_[labels, np.full(40, 2)]
    partial = make_problem(X, one_hot(labels, 3), loss="softmax")
    assert partial.separable and not partial.has_optimum
    ridged = make_problem(X, one_hot(labels, 3), loss="softmax", l2=1e-3)
    assert not ridged.separable and ridged.has_optimum
    Xo, lo = overlapping(150, 2, 2, seed=9)
    assert not make_problem(Xo, lo[:, None].astype(float), loss="logistic").separable


def test_ridge_is_the_closed_form():
    """--l2 with squared error: the optimum is (X̃ᵀX̃/N + αI_W)⁻¹X̃ᵀy/N in standardised units."""
    frame = pd.read_csv(SAMPLES / "diabetes.csv")
    X, y = frame.iloc[:, :-1].to_numpy(float), frame.iloc[:, -1:].to_numpy(float)
    alpha = 0.05
    problem = make_problem(X, y, l2=alpha)
    Z = problem.train.standardized()
    Zt = np.column_stack([Z, np.ones(len(Z))])
    ridge = np.diag(np.r_[np.full(Z.shape[1], alpha), 0.0])
    theta = np.linalg.solve(Zt.T @ Zt / len(Z) + ridge, Zt.T @ y / len(Z))
    W, w0, loss = problem.optimum
    np.testing.assert_allclose(W, theta[:-1], rtol=1e-9)
    np.testing.assert_allclose(w0, theta[-1], rtol=1e-9)
    R = y - Zt @ theta
    assert loss == pytest.approx(float((R**2).mean() + alpha * (theta[:-1] ** 2).sum()), rel=1e-10)


# -- the commands on a text target ------------------------------------------------------------


def test_iris_with_no_options_is_separable_and_never_called_converged(in_tmp):
    result = run("fit", IRIS, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["loss"] == "cross-entropy" and doc["classes"] == [
        "setosa",
        "versicolor",
        "virginica",
    ]
    assert doc["separable"] is True and doc["optimum_loss"] is None
    assert doc["verdict"] != "converged" and doc["optimum_weights"] is None
    assert "--l2" in doc["next_step"]
    text = run("fit", IRIS, "-o", "b.json")
    assert "the target holds classes" in text.stderr and "separable" in text.stderr


def test_iris_with_l2_converges_to_scikit_learns_optimum(in_tmp):
    alpha = 0.01
    doc = run_json("fit", IRIS, "--l2", alpha)
    assert doc["verdict"] == "converged" and doc["separable"] is False
    assert doc["final_loss"] == pytest.approx(doc["optimum_loss"], rel=1e-5)
    frame = pd.read_csv(IRIS)
    X = frame.iloc[:, :4].to_numpy(float)
    labels = pd.Categorical(frame["species"], categories=doc["classes"]).codes
    mean, sd = X.mean(axis=0), X.std(axis=0)
    theirs = sklearn_fit((X - mean) / sd, labels, alpha)
    coef = theirs.coef_.T / sd[:, None]  # in the data's units, as the model file writes W
    coef -= coef.mean(axis=1, keepdims=True)
    ours = np.asarray(doc["optimum_weights"])
    np.testing.assert_allclose(ours - ours.mean(axis=1, keepdims=True), coef, atol=1e-7)
    np.testing.assert_allclose(doc["weights"], doc["optimum_weights"], atol=2e-2)


def test_predict_writes_labels_and_probabilities_and_scores_them(in_tmp):
    assert run("fit", IRIS, "--l2", "0.01", "-q").exit_code == 0
    out = run("predict", "model.json", IRIS, "-o", "p.csv")
    assert out.exit_code == 0, out.stderr
    pred = pd.read_csv("p.csv")
    classes = ["setosa", "versicolor", "virginica"]
    assert list(pred.columns) == ["species", *[f"P(species={c})" for c in classes]]
    P = pred.iloc[:, 1:].to_numpy()
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert (pred["species"] == np.array(classes)[P.argmax(axis=1)]).all()
    truth = pd.read_csv(IRIS)["species"]
    doc = run_json("predict", "model.json", IRIS)
    assert doc["accuracy"] == pytest.approx((pred["species"] == truth).mean(), rel=1e-15)
    at = [classes.index(t) for t in truth]
    log_loss = -np.mean(np.log(P[np.arange(len(P)), at]))
    assert doc["log_loss"] == pytest.approx(log_loss, rel=1e-9)
    confusion = pd.crosstab(truth, pred["species"])
    for t in classes:
        for p in classes:
            count = confusion.loc[t, p] if p in confusion.columns else 0
            assert doc["confusion"][t][p] == count
    assert "accuracy" in out.stderr and "Confusion" in out.stderr


def test_labels_unseen_in_training_count_as_wrong_and_are_named(in_tmp):
    assert run("fit", IRIS, "--l2", "0.01", "-q").exit_code == 0
    frame = pd.read_csv(IRIS)
    frame.loc[[0, 1], "species"] = "unknown-iris"
    frame.to_csv("new.csv", index=False)
    doc = run_json("predict", "model.json", "new.csv")
    assert doc["unknown_labels"] == 2 and doc["rows_scored"] == 150
    assert doc["labels"][0] == "setosa"  # still predicted
    result = run("predict", "model.json", "new.csv", "-o", "p.csv")
    assert result.exit_code == 0 and "unknown-iris" in result.stderr


def test_two_classes_are_logistic_regression_with_one_output(in_tmp):
    frame = pd.read_csv(IRIS)
    frame = frame[frame["species"] != "setosa"]
    frame.to_csv("two.csv", index=False)
    doc = run_json("fit", "two.csv", "--l2", "0.001")
    assert np.asarray(doc["weights"]).shape == (4, 1) and doc["classes"] == [
        "versicolor",
        "virginica",
    ]
    assert doc["verdict"] == "converged"
    X = frame.iloc[:, :4].to_numpy(float)
    mean, sd = X.mean(axis=0), X.std(axis=0)
    theirs = sklearn_fit((X - mean) / sd, (frame["species"] == "virginica").to_numpy(int), 0.001)
    np.testing.assert_allclose(doc["optimum_weights"], theirs.coef_.T / sd[:, None], rtol=1e-6)
    pred = run_json("predict", "model.json", "two.csv")
    P = np.asarray(pred["probabilities"])
    assert P.shape == (100, 2) and np.allclose(P.sum(axis=1), 1.0)


def test_a_streamed_classifier_is_the_in_memory_one(in_tmp, monkeypatch):
    import babynn_cli.data.stream as data

    monkeypatch.setattr(data, "STREAM_BLOCK_ROWS", 40)  # several blocks, a short last one
    args = ("--l2", "0.003", "--lr", "1", "--tol", "0", "-e", "200")
    whole = run_json("fit", IRIS, *args, "-o", "a.json")
    streamed = run_json("fit", IRIS, *args, "--stream", "-o", "b.json")
    np.testing.assert_allclose(streamed["weights"], whole["weights"], rtol=1e-9, atol=1e-12)
    assert streamed["final_loss"] == pytest.approx(whole["final_loss"], rel=1e-12)
    assert streamed["optimum_loss"] == pytest.approx(whole["optimum_loss"], rel=1e-12)
    assert streamed["accuracy"] == whole["accuracy"]


@pytest.mark.parametrize("extra", [(), ("--hidden", "8", "-b", "16", "-e", "60")])
def test_minibatches_networks_sweep_and_compare_take_classes(in_tmp, extra):
    fit = run_json("fit", IRIS, "--l2", "0.001", *extra)
    assert 0.9 <= fit["accuracy"] <= 1.0
    sweep = run_json("sweep-lr", IRIS, "--l2", "0.001", "--num", "3", "--epochs", "30", *extra)
    assert all("accuracy" in row for row in sweep["rows"])
    compare = run_json("compare", IRIS, "--l2", "0.001", "--epochs", "30", *extra)
    assert all(row["final_loss"] > 0 for row in compare["rows"])


def test_mse_on_a_text_target_and_classes_on_a_cluster_are_refused(in_tmp):
    result = run("fit", IRIS, "--loss", "mse")
    assert result.exit_code != 0 and result.stderr.startswith("Error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    through_origin = run("fit", IRIS, "--l2", "0.1", "--no-intercept", "-q")
    assert through_origin.exit_code == 0, through_origin.stderr  # cross-entropy: no moments
    ridge = run("fit", SAMPLES / "notes_example.csv", "--l2", "0.1", "--no-intercept")
    assert ridge.exit_code == 2 and "--l2 with --no-intercept" in ridge.stderr
    refused = run("fit", IRIS, "--scheduler", "localhost:1")
    assert refused.exit_code != 0 and "--stream" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_warm_start_and_model_files_keep_the_classes(in_tmp):
    assert run("fit", IRIS, "--l2", "0.01", "-q").exit_code == 0
    again = run_json("fit", IRIS, "--l2", "0.01", "--warm-start", "model.json", "-o", "m2.json")
    assert again["epochs_run"] < 20 and again["verdict"] == "converged"
    spec = json.loads(Path("model.json").read_text())
    spec["model"]["classes"] = ["setosa", "setosa", "virginica"]
    Path("bad.json").write_text(json.dumps(spec))
    damaged = run("predict", "bad.json", IRIS)
    assert damaged.exit_code != 0 and "classes" in damaged.stderr
    numbers = pd.read_csv(SAMPLES / "notes_example.csv")
    numbers.to_csv("numbers.csv", index=False)
    mixed = run("predict", "model.json", "numbers.csv")
    assert mixed.exit_code != 0 and mixed.stderr.startswith("Error: ")


@pytest.mark.parametrize(
    ("data", "extra"),
    [(IRIS, ()), (SAMPLES / "diabetes.csv", ()), (SAMPLES / "nonlinear.csv", ("--hidden", "4"))],
)
def test_a_penalised_loss_is_one_number_in_fit_history_and_compare(in_tmp, data, extra):
    """With --l2 the loss a run descends is the data's loss plus α||W||² in the units trained
    (for a network on standardised targets, both times s²): the summary, the last history
    record and compare's row of the saved model give the same number."""
    same = ("--l2", "0.05", "--val-frac", "0", *extra)
    fit = run_json("fit", data, *same, "-b", "full", "--epochs", "40")
    assert fit["final_loss"] == pytest.approx(fit["history"][-1]["train_loss"], rel=1e-12)
    compare = run_json("compare", data, "--model", "model.json", *same)
    (row,) = [r for r in compare["rows"] if r["kind"] == "saved model"]
    assert row["final_loss"] == pytest.approx(fit["final_loss"], rel=1e-9)
