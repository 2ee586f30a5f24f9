"""CSVs as users have them: text columns as categories, ids, missing cells, dates, dialects. The
references are np.linalg.lstsq on the same columns encoded by hand with pandas, and the notes'
model ŷ = Wᵀx + w0 computed from the model file's own weights."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import run, run_json
from hypothesis import given, settings
from hypothesis import strategies as st

from babynn_cli.core.encoding import MISSING, Column, Encoding
from babynn_cli.data.encoding import encode, fractional_years

STORES = ["north", "south", "east"]


def shop(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    """Sales with an id, a text category, an ISO date, a true/false column, a numeric code (a
    category in fact) and a number: y depends on all of them."""
    rng = np.random.default_rng(seed)
    store = rng.choice(STORES, rows)
    day = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 1000, rows), unit="D")
    promo = rng.random(rows) < 0.4
    code = rng.integers(1, 4, rows)
    price = rng.normal(10, 2, rows).round(2)
    years = fractional_years(pd.Series(day).dt.tz_localize("UTC"))
    y = (
        3.0 * price
        + np.select([store == "north", store == "south"], [5.0, -2.0], 0.5)
        + 4.0 * promo
        + np.array([0.0, 7.0, -3.0])[code - 1]
        + 1.5 * (years - 2021)
        + rng.normal(0, 0.5, rows)
    )
    return pd.DataFrame({
        "order": [f"A{k:04d}" for k in range(rows)],
        "store": store,
        "day": day.strftime("%Y-%m-%d"),
        "promo": np.where(promo, "true", "false"),
        "code": code,
        "price": price,
        "y": y.round(6),
    })  # fmt: skip


def by_hand(frame: pd.DataFrame) -> pd.DataFrame:
    """The encoding babynn's docs describe, written with pandas: one indicator per level of a
    text or --categorical column (levels sorted), dates as fractional years, true/false 1/0."""
    out = pd.DataFrame(index=frame.index)
    for level in sorted(frame["store"].unique()):
        out[f"store={level}"] = (frame["store"] == level).astype(float)
    out["day"] = fractional_years(pd.to_datetime(frame["day"], utc=True))
    out["promo"] = (frame["promo"] == "true").astype(float)
    for level in sorted(frame["code"].astype(str).unique()):
        out[f"code={level}"] = (frame["code"].astype(str) == level).astype(float)
    out["price"] = frame["price"].astype(float)
    return out


def least_norm(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The least-squares fit of least norm with an intercept (the features centred), by lstsq."""
    x_mean, y_mean = X.mean(axis=0), y.mean()
    w = np.linalg.lstsq(X - x_mean, y - y_mean, rcond=None)[0]
    b = y_mean - x_mean @ w
    loss = float(np.mean((y - X @ w - b) ** 2))
    return w, b, loss


def test_text_dates_booleans_and_codes_fit_as_lstsq_does_on_the_same_encoding(in_tmp):
    frame = shop()
    frame.to_csv("shop.csv", index=False)
    result = run("fit", "shop.csv", "--id", "order", "--categorical", "code", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    expected = by_hand(frame)
    assert doc["features"] == list(expected.columns)
    w, b, loss = least_norm(expected.to_numpy(), frame["y"].to_numpy())
    # the one-hot design is collinear: the reference is lstsq's optimum of least norm ...
    np.testing.assert_allclose(np.array(doc["optimum_weights"])[:, 0], w, rtol=1e-8, atol=1e-9)
    assert doc["optimum_loss"] == pytest.approx(loss, rel=1e-10)
    # ... and training ends there, not at another of the many optima
    assert doc["verdict"] == "converged"
    np.testing.assert_allclose(np.array(doc["weights"])[:, 0], w, rtol=1e-3, atol=1e-3)
    assert doc["bias"][0] == pytest.approx(b, rel=1e-3)  # b ≈ −2,900: w(day) × 2022 years
    model = json.loads((in_tmp / "model.json").read_text())["model"]
    assert model["ids"] == ["order"]
    kinds = {c["name"]: c["kind"] for c in model["encoding"]["columns"]}
    assert kinds == {
        "store": "category", "day": "date", "promo": "boolean", "code": "category",
        "price": "number",
    }  # fmt: skip


def test_the_header_says_how_the_columns_were_read(in_tmp):
    shop().to_csv("shop.csv", index=False)
    err = run("fit", "shop.csv", "--id", "order", "--categorical", "code", "-e", 3).stderr
    assert "levels: store 3, code 3" in err
    assert "dates as fractional years (2024-07-02 00:00 UTC is 2024.5): day" in err
    assert "true/false as 1/0: promo" in err
    assert "id column(s), not features (predict writes them first): order" in err
    assert "the features are collinear" in err


def test_fractional_years():
    when = pd.to_datetime(
        pd.Series(["2024-07-02", "2023-01-01", "2023-12-31T12:00:00", "2024-01-01 06:00+06:00"]),
        format="ISO8601", utc=True,
    )  # fmt: skip
    np.testing.assert_allclose(
        fractional_years(when), [2024.5, 2023.0, 2023 + 364.5 / 365, 2024.0], rtol=0, atol=1e-12
    )


def predict_rows(model: dict, frame: pd.DataFrame) -> np.ndarray:
    """ŷ = Wᵀx + w0 from the model file's weights, the rows encoded by hand; a level the model
    never saw has all its indicators 0, a missing cell the model's fill."""
    features = model["features"]
    x = np.zeros((len(frame), len(features)))
    for column in model["encoding"]["columns"]:
        name, values = column["name"], frame[column["name"]]
        if column["kind"] == "category":
            labels = values.astype(str).where(values.notna(), MISSING)
            for level in column["levels"]:
                x[:, features.index(f"{name}={level}")] = (labels == level).to_numpy()
            continue
        if column["kind"] == "date":
            numbers = fractional_years(pd.to_datetime(values, utc=True))
        elif column["kind"] == "boolean":
            numbers = values.map({"true": 1.0, "false": 0.0}).to_numpy(dtype=float)
        else:
            numbers = values.to_numpy(dtype=float)
        if "fill" in column:
            numbers = np.where(np.isnan(numbers), column["fill"], numbers)
        x[:, features.index(name)] = numbers
    return x @ np.array(model["weights"])[:, 0] + model["bias"][0]


def test_an_unseen_category_predicts_as_none_of_the_known_ones(in_tmp):
    shop().to_csv("shop.csv", index=False)
    run("fit", "shop.csv", "--id", "order", "--categorical", "code", "-q")
    new = shop(6, seed=1)
    new.loc[[1, 4], "store"] = "west"  # never seen in training
    new.loc[2, "code"] = 9
    new.to_csv("new.csv", index=False)
    result = run("predict", "model.json", "new.csv")
    assert result.exit_code == 0, result.stderr
    got = pd.read_csv(pd.io.common.StringIO(result.stdout))
    model = json.loads((in_tmp / "model.json").read_text())["model"]
    np.testing.assert_allclose(got["y"], predict_rows(model, new), rtol=1e-12)
    assert (
        "cells holding a category the model never saw, predicted as none of the known ones: "
        "store 2, code 1"
    ) in result.stderr


def test_predict_leaves_rows_with_missing_cells_empty_and_aligned(in_tmp):
    shop().to_csv("shop.csv", index=False)
    run("fit", "shop.csv", "--id", "order", "--categorical", "code", "-q", "-o", "plain.json")
    new = shop(5, seed=2)
    new["price"] = new["price"].astype(object)
    new.loc[1, "price"] = ""  # a missing number
    new.loc[3, "store"] = "NA"  # a missing category
    new.to_csv("new.csv", index=False)
    result = run("predict", "plain.json", "new.csv")
    assert result.exit_code == 0, result.stderr
    got = pd.read_csv(pd.io.common.StringIO(result.stdout), dtype={"order": str})
    assert list(got["order"]) == list(new["order"])  # every row, in order
    assert got["y"].isna().tolist() == [False, True, False, True, False]
    assert "2 of 5 rows not predicted (a missing feature cell" in result.stderr
    assert "MSE" in result.stderr and "on the 3 of 5 rows" in result.stderr
    doc = run_json("predict", "plain.json", "new.csv")
    assert doc["ids"]["order"] == list(new["order"]) and doc["predictions"][1] == [None]
    assert doc["rows"] == 5 and doc["rows_not_predicted"] == 2 and doc["rows_scored"] == 3


def test_a_model_that_imputes_predicts_every_row_with_its_recorded_fills(in_tmp):
    frame = shop()
    frame.loc[[3, 40], "price"] = np.nan
    frame.loc[[7], "store"] = np.nan
    frame.to_csv("shop.csv", index=False)
    result = run("fit", "shop.csv", "--id", "order", "--categorical", "code", "--impute", "-q")
    assert result.exit_code == 0, result.stderr
    model = json.loads((in_tmp / "model.json").read_text())["model"]
    fills = {c["name"]: c.get("fill") for c in model["encoding"]["columns"]}
    assert fills["price"] == pytest.approx(frame["price"].mean(), rel=1e-15)
    assert f"store={MISSING}" in model["features"]
    new = shop(5, seed=3)
    new.loc[0, "price"] = np.nan
    new.loc[2, "store"] = np.nan
    new.to_csv("new.csv", index=False)
    result = run("predict", "model.json", "new.csv")
    got = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert got["y"].notna().all() and "not predicted" not in result.stderr
    np.testing.assert_allclose(got["y"], predict_rows(model, new), rtol=1e-12)


def test_without_impute_a_missing_cell_names_both_ways_out(in_tmp):
    frame = shop()
    frame.loc[5, "store"] = np.nan
    frame.to_csv("shop.csv", index=False)
    result = run("fit", "shop.csv", "--id", "order")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: column 'store' has a missing value in row 6: pass --impute to fill missing cells "
        "(a number with its column's mean, a category with a level of its own) or --dropna to "
        "drop the rows that have one\n"
    )
    result = run("fit", "shop.csv", "--id", "order", "--dropna", "--json")
    assert json.loads(result.stdout)["n_train"] == 119
    assert "--dropna dropped 1 row(s)" in run("fit", "shop.csv", "--id", "order", "--dropna").stderr


def test_ids_pass_through_unchanged_and_first(in_tmp):
    frame = shop(30)
    frame["order"] = [f"{k:03d}" for k in range(30)]  # leading zeros, kept as written
    frame.loc[4, "order"] = "x, y"  # a comma: quoted in the output
    frame.loc[5, "order"] = "NA"  # an id is never missing: written as it is
    frame = frame[["price", "order", "store", "y"]]
    frame.to_csv("ids.csv", index=False)
    run("fit", "ids.csv", "--id", "order", "-q")
    out = run("predict", "model.json", "ids.csv").stdout
    assert out.splitlines()[0] == "order,y"
    got = pd.read_csv(pd.io.common.StringIO(out), dtype={"order": str}, keep_default_na=False)
    assert list(got["order"]) == list(frame["order"])
    assert out.splitlines()[5].startswith('"x, y",')


def test_a_text_column_of_ids_is_named_with_the_ways_out(in_tmp):
    shop().to_csv("shop.csv", index=False)
    result = run("fit", "shop.csv")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: column 'order' holds text with a different value in nearly every row (an id, or "
        "free text), which a model cannot learn as categories: pass --id order to carry it "
        "through to predictions, or --exclude order to leave it out\n"
    )
    excluded = run_json("fit", "shop.csv", "--exclude", "order", "-e", 3)
    assert "order" not in " ".join(excluded["features"])


def test_many_levels_with_few_rows_each_are_pointed_out(in_tmp):
    frame = shop(200)
    frame.insert(1, "batch", [f"b{k // 3}" for k in range(200)])  # 67 levels, 3 rows each
    frame.to_csv("shop.csv", index=False)
    err = run("fit", "shop.csv", "--id", "order", "-e", 2).stderr
    assert "column 'batch' has 67 levels in 200 rows, few rows each (an id?)" in err


def test_a_saved_index_is_left_out_with_a_note(in_tmp):
    frame = shop(40)
    frame.to_csv("indexed.csv")  # pandas' index as a first, unnamed column
    refused = run("fit", "indexed.csv", "--id", "order")
    assert refused.exit_code == 1 and "--exclude 'Unnamed: 0'" in refused.stderr
    for how in (["--exclude", "Unnamed: 0"], ["--features", "store,price"]):
        result = run("fit", "indexed.csv", "--id", "order", *how, "-e", 2)
        assert result.exit_code == 0, result.stderr
        assert "left out: 'Unnamed: 0', with no name in the header (a saved index)" in result.stderr
    assert run("predict", "model.json", "indexed.csv").exit_code == 0


def test_a_semicolon_decimal_comma_file_reads_as_the_plain_one(in_tmp):
    frame = shop(50)
    frame["price"] = frame["price"] * 1000  # thousands to separate
    frame.loc[[3, 9], "price"] = np.nan
    frame.to_csv("plain.csv", index=False)
    text = frame.to_csv(index=False, sep=";", decimal=",", na_rep="?")
    # 12345.6 → 12.345,6: the thousands separator too
    lines = text.splitlines()
    price = lines[0].split(";").index("price")

    def grouped(cell: str) -> str:
        if cell == "?":
            return cell
        whole, _, part = cell.partition(",")
        sign, digits = ("-", whole[1:]) if whole.startswith("-") else ("", whole)
        groups = []
        while len(digits) > 3:
            digits, groups = digits[:-3], [digits[-3:], *groups]
        return sign + ".".join([digits, *groups]) + ("," + part if part else "")

    body = []
    for line in lines[1:]:
        cells = line.split(";")
        cells[price] = grouped(cells[price])
        body.append(";".join(cells))
    (in_tmp / "export.csv").write_text("\n".join([lines[0], *body]) + "\n")
    common = ["--id", "order", "--categorical", "code", "--impute", "-e", 5]
    plain = run_json("fit", "plain.csv", *common)
    exported = run_json(
        "fit", "export.csv", "--sep", ";", "--decimal", ",", "--thousands", ".",
        "--na-values", "?", *common,
    )  # fmt: skip
    assert exported["weights"] == plain["weights"] and exported["features"] == plain["features"]
    predicted = run(
        "predict", "model.json", "export.csv", "--sep", ";", "--decimal", ",", "--thousands", ".",
        "--na-values", "?",
    )  # fmt: skip
    assert predicted.exit_code == 0, predicted.stderr


def test_true_false_in_any_case_are_one_and_zero(in_tmp):
    frame = pd.DataFrame({"a": ["True", "false", "TRUE", "False"] * 5, "b": range(20)})
    frame["y"] = 2.0 * frame["a"].str.lower().eq("true") + 0.5 * frame["b"]
    frame.to_csv("tf.csv", index=False)
    doc = run_json("fit", "tf.csv")
    assert doc["features"] == ["a", "b"]
    np.testing.assert_allclose(np.array(doc["optimum_weights"])[:, 0], [2.0, 0.5], rtol=1e-10)


def test_streamed_parquet_and_parts_fit_as_the_whole_file(in_tmp):
    frame = shop(300)
    frame.loc[[10, 200], "price"] = np.nan
    frame.to_csv("shop.csv", index=False)
    (in_tmp / "parts").mkdir()
    for k, lo in enumerate(range(0, 300, 100)):
        frame.iloc[lo : lo + 100].to_csv(f"parts/p{k}.csv", index=False)
    common = ["--id", "order", "--categorical", "code", "--impute", "-e", 20]
    whole = run_json("fit", "shop.csv", *common)
    runs = [
        run_json("fit", "shop.csv", "--stream", *common),
        run_json("fit", "parts", *common),
        run_json("fit", "parts/p*.csv", "--stream", *common),
    ]
    try:
        frame.to_parquet("shop.parquet", index=False)
        runs.append(run_json("fit", "shop.parquet", *common))
    except ImportError:
        pass
    for other in runs:
        assert other["features"] == whole["features"]
        np.testing.assert_allclose(other["weights"], whole["weights"], rtol=1e-9, atol=1e-12)
        assert other["final_loss"] == pytest.approx(whole["final_loss"], rel=1e-9)


def test_compare_a_saved_model_and_continue_it(in_tmp):
    frame = shop()
    frame.to_csv("shop.csv", index=False)
    run("fit", "shop.csv", "--id", "order", "--categorical", "code", "-e", 30, "-o", "m.json")
    doc = run_json("compare", "shop.csv", "--id", "order", "--categorical", "code", "--model",
                   "m.json")  # fmt: skip
    saved = json.loads((in_tmp / "m.json").read_text())
    (row,) = doc["rows"]  # the saved model's loss on the same rows, as fit measured it
    assert row["kind"] == "saved model"
    assert row["final_loss"] == pytest.approx(saved["result"]["final_loss"], rel=1e-9)
    # a file lacking one level: its indicator is 0 in every row, the model still reads it
    frame[frame["store"] != "east"].to_csv("two.csv", index=False)
    result = run("compare", "two.csv", "--id", "order", "--categorical", "code", "--model",
                 "m.json", "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    continued = run_json(
        "fit", "shop.csv", "--id", "order", "--categorical", "code", "--warm-start", "m.json",
        "-o", "m2.json",
    )  # fmt: skip
    assert continued["verdict"] == "converged"
    assert continued["features"] == saved["model"]["features"]
    again = json.loads((in_tmp / "m2.json").read_text())
    assert again["training"]["init"] == "warm-start"
    assert again["model"]["encoding"] == saved["model"]["encoding"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=1, max_size=30),
    st.booleans(),
)
def test_each_row_has_one_indicator_per_known_level(cells, impute):
    """Property: a row's indicators sum to 1 for a level the encoding knows (or a missing cell
    with --impute), 0 for an unseen level; a missing cell without --impute is flagged missing."""
    levels = ("a", "b") + ((MISSING,) if impute else ())
    encoding = Encoding((Column("c", "category", levels),), impute)
    got = encode(encoding, pd.DataFrame({"c": pd.Series(cells, dtype=object)}))
    sums = got.X.sum(axis=1)
    for cell, total, missing in zip(cells, sums, got.missing, strict=True):
        if cell is None:
            assert (total, missing) == ((1.0, False) if impute else (0.0, True))
        else:
            assert total == (1.0 if cell in levels else 0.0) and not missing
    assert got.unseen.get("c", 0) == sum(cell in ("c", "d") for cell in cells)


def test_a_damaged_encoding_in_a_model_file_is_named(in_tmp):
    shop().to_csv("shop.csv", index=False)
    run("fit", "shop.csv", "--id", "order", "-e", 3, "-q")
    doc = json.loads((in_tmp / "model.json").read_text())
    doc["model"]["encoding"]["columns"][0]["levels"].pop()  # one feature without its level
    (in_tmp / "bad.json").write_text(json.dumps(doc))
    result = run("predict", "bad.json", "shop.csv")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "the 'encoding' does not give the model's features" in result.stderr


def test_the_readme_walk_through_runs_as_shown(in_tmp):
    """README's "Your own data": its commands run, and print what it shows."""
    import re
    import shlex

    from conftest import ROOT

    section = (ROOT / "README.md").read_text().split("## Your own data")[1].split("\n## ")[0]
    commands, header, head = re.findall(r"```(?:sh|text)\n(.*?)```", section, re.S)[:3]
    said = ""
    for line in commands.replace("\\\n", " ").strip().splitlines():
        args = shlex.split(line)
        assert args[0] == "babynn"
        result = run(*args[1:])
        assert result.exit_code == 0, result.stderr
        said += result.stderr
    for line in header.strip().splitlines():
        for piece in line.split("…"):  # the README shortens a long line
            assert piece.strip(" ,") in said, piece
    assert (in_tmp / "predictions.csv").read_text().startswith(head)


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (
            [f"{1 + k % 12:02d}/{1 + k % 28:02d}/2020" for k in range(30)],
            "Error: column 'c' holds dates babynn cannot read ('01/01/2020'): only ISO dates are "
            "(2024-07-02, 2024-07-02T12:00); write them so, or pass --exclude c",
        ),
        (
            ["$1,200", "$30", "$45.5"] * 10,
            "Error: column 'c' holds numbers written with signs ('$1,200'), which are not numbers "
            "to babynn: write them plain, or pass --exclude c (a thousands separator alone is read "
            "with --thousands)",
        ),
        (
            ["12%", "40%", "7%"] * 10,
            "Error: column 'c' holds numbers written with signs ('12%'), which are not numbers "
            "to babynn: write them plain, or pass --exclude c (a thousands separator alone is read "
            "with --thousands)",
        ),
    ],
)
def test_text_that_is_something_else_is_named(in_tmp, cells, message):
    frame = pd.DataFrame({"a": np.arange(30.0), "c": cells, "y": np.arange(30.0) * 2})
    frame.to_csv("d.csv", index=False)
    result = run("fit", "d.csv")
    assert result.exit_code == 1 and result.stderr == message + "\n"


def test_an_empty_column_is_named_even_with_impute(in_tmp):
    pd.DataFrame({"e": [np.nan] * 5, "a": range(5), "y": range(5)}).to_csv("d.csv", index=False)
    result = run("fit", "d.csv", "--impute")
    assert (
        result.stderr
        == "Error: column 'e' is empty in every row: pass --exclude e to leave it out\n"
    )


def test_a_parquet_column_of_nested_values_is_one_line_and_can_be_left_out(in_tmp):
    """Structs, lists and maps are neither numbers nor categories (they read as text before):
    one line naming the column and --exclude, in memory and streamed; excluded, the rest trains."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    a = rng.normal(size=40)
    for name, values in (
        ("s", pa.array([{"u": 1, "v": 2.0}] * 40)),
        ("l", pa.array([[1, 2]] * 40)),
        ("p", pa.array([[("k", 1)]] * 40, type=pa.map_(pa.string(), pa.int64()))),
    ):
        pq.write_table(pa.table({"a": a, name: values, "y": 2 * a + 1}), f"{name}.parquet")
        for extra in ((), ("--stream",)):
            result = run("fit", f"{name}.parquet", "-q", *extra)
            assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
            assert f"column '{name}' holds nested values" in result.stderr
            assert f"--exclude '{name}'" in result.stderr
        doc = run_json("fit", f"{name}.parquet", "--exclude", name)
        assert doc["features"] == ["a"] and doc["verdict"] == "converged"
