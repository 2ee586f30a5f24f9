"""Every bad input: one `Error: ...` line naming the problem, the right exit code, no traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import NOTES, run, run_json


def fails(*args, code=1, input=None) -> str:
    result = run(*args, input=input)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.fixture
def csv(in_tmp):
    def write(text: str, name: str = "d.csv") -> str:
        (in_tmp / name).write_text(text)
        return name

    return write


def test_missing_file(in_tmp):
    assert fails("fit", "nope.csv") == "Error: cannot read 'nope.csv': no such file"


def test_a_folder_without_data_files(in_tmp):
    assert fails("fit", ".") == "Error: cannot read '.': a folder with no CSV or Parquet files"
    assert fails("fit", "parts/*.csv") == "Error: no file matches 'parts/*.csv'"


def test_empty_file(csv):
    assert fails("fit", csv("")) == "Error: 'd.csv' is empty"


def test_header_without_rows(csv):
    assert fails("fit", csv("a,b,y\n")) == "Error: 'd.csv' has a header but no rows"


def test_every_row_has_exactly_the_headers_fields(csv):
    """A field too many is an error, never a silent shift of the columns (pandas' implicit
    index); an unnamed column (a saved index) is an error, never a feature called 'nan'."""
    assert fails("fit", csv("a,y\n1,2\n3,4,5\n")) == (
        "Error: row 2 of 'd.csv' has 3 fields; the header has 2"
    )
    assert fails("fit", csv("a,b,y\n1,2,3,9\n4,5,6,9\n")) == (
        "Error: row 1 of 'd.csv' has more fields than its header"
    )
    assert fails("fit", csv(",a,y\n0,1,2\n1,3,4\n")) == (
        "Error: column 1 of 'd.csv' has no name in the header (a saved index?): pass --exclude "
        "'Unnamed: 0' to leave it out, or name it"
    )
    assert fails("fit", csv("Unnamed: 0,a,y\n0,1,2\n1,3,4\n")).startswith(
        "Error: column 1 of 'd.csv' has no name"
    )


def test_names_padded_with_spaces_are_the_names(csv, in_tmp):
    name = csv(" a , b , y \n1,2,3\n4,5,7\n5,1,1\n2,2,2\n")
    doc = run_json("fit", name, "--features", "a,b", "-t", "y", "--epochs", 5)
    assert doc["features"] == ["a", "b"] and doc["targets"] == ["y"]


def test_not_text(csv, in_tmp):
    (in_tmp / "bin.csv").write_bytes(b"a,y\n\xff\xfe,1\n")
    assert fails("fit", "bin.csv") == "Error: cannot read 'bin.csv': it is not UTF-8 text"


def test_unknown_target(csv):
    assert fails("fit", csv("a,b,y\n1,2,3\n4,5,6\n"), "-t", "z") == (
        "Error: no column 'z' in 'd.csv' (columns: a, b, y)"
    )


def test_unknown_feature(csv):
    assert fails("fit", csv("a,b,y\n1,2,3\n4,5,6\n"), "--features", "a,q") == (
        "Error: no column 'q' in 'd.csv' (columns: a, b, y)"
    )


def test_conflicting_columns_are_usage_errors(csv):
    name = csv("a,b,y\n1,2,3\n4,5,6\n")
    assert fails("fit", name, "--features", "a,y", code=2) == (
        "Error: column 'y' is named both as a target and as a feature"
    )
    assert fails("fit", name, "-t", "y", "-t", "y", code=2) == (
        "Error: column 'y' is named twice (--target)"
    )


def test_no_features(csv):
    assert fails("fit", csv("y\n1\n2\n")) == (
        "Error: 'd.csv' has no feature columns besides the target y"
    )


def test_text_in_a_column_of_numbers(csv):
    """A column mostly of numbers is a number column: a cell of other text is named, with the
    ways out (a missing-cell marker, categories, leaving it out)."""
    assert fails("fit", csv("a,b,y\n1,2,3\n4,five,6\n")) == (
        "Error: column 'b' is not a number: row 2 holds 'five' (if it marks a missing cell, pass "
        "--na-values five; --categorical b reads the column as categories, --exclude b leaves it "
        "out)"
    )
    assert fails("fit", csv("a,b c,y\n1,2,3\n4,n/a ?,6\n5,7,8\n")) == (
        "Error: column 'b c' is not a number: row 2 holds 'n/a ?' (if it marks a missing cell, "
        "pass --na-values 'n/a ?'; --categorical 'b c' reads the column as categories, --exclude "
        "'b c' leaves it out)"
    )
    assert fails("fit", csv("a,y\n1,2\n4,six\n5,7\n")) == (
        "Error: column 'y' is not a number: row 2 holds 'six'"
    )


def test_missing_values_and_dropna(csv):
    path = csv("a,b,y\n1,2,3\n4,,6\n7,8,9\n10,11,13\n")
    assert fails("fit", path) == (
        "Error: column 'b' has a missing value in row 2: pass --impute to fill missing cells (a "
        "number with its column's mean, a category with a level of its own) or --dropna to drop "
        "the rows that have one"
    )
    result = run("fit", path, "--dropna", "--json", "--epochs", 3)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["n_train"] == 3
    assert fails("fit", csv("a,y\n1,2\n4,\n5,7\n")) == (
        "Error: the target 'y' has a missing value in row 2: a row without its target cannot "
        "train; pass --dropna to drop such rows"
    )


def test_infinite_values(csv):
    assert fails("fit", csv("a,y\n1,2\ninf,3\n4,5\n")) == (
        "Error: column 'a' has an infinite value in row 2"
    )


def test_duplicate_column_names(csv):
    assert fails("fit", csv("a,a,y\n1,2,3\n4,5,6\n")) == (
        "Error: 'd.csv' has duplicate column names: a"
    )


def test_too_few_rows(csv):
    assert fails("fit", csv("a,y\n1,2\n")) == (
        "Error: 'd.csv' has 1 training row(s); a fit needs at least 2"
    )


def test_validation_fraction_leaving_too_few_training_rows(csv):
    assert fails("fit", csv("a,y\n1,2\n3,4\n5,7\n"), "--val-frac", "0.5") == (
        "Error: 'd.csv' has 1 training row(s) after holding out 2 for validation; "
        "a fit needs at least 2"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--lr", "0"), "Error: --lr must be a finite number above 0 (got 0)"),
        (("--lr", "-0.1"), "Error: --lr must be a finite number above 0 (got -0.1)"),
        (("--val-frac", "1"), "Error: --val-frac must be below 1 (got 1)"),
        (
            ("--early-stopping", "--val-frac", "0"),
            "Error: --early-stopping needs a validation set: drop --val-frac 0",
        ),
        (("-b", "0"), "Error: --batch-size takes a whole number of rows ≥ 1 or 'full' (got '0')"),
    ],
)
def test_conflicting_or_out_of_range_options_exit_2(in_tmp, args, message):
    assert fails("fit", NOTES, *args, code=2) == message


@pytest.mark.parametrize(
    "args",
    [
        ("--schedule", "sometimes"),
        ("--epochs", "0"),
        ("--batch-size", "0"),
        ("--val-frac", "-0.1"),
        ("--no-such-option",),
        ("--tol", "-1"),
    ],
)
def test_typer_rejects_bad_values_with_exit_2(in_tmp, args):
    result = run("fit", NOTES, *args)
    assert result.exit_code == 2
    assert args[0] in result.stderr or "No such option" in result.stderr
    assert not (in_tmp / "model.json").exists()


def test_damaged_model_file(in_tmp):
    (in_tmp / "m.json").write_text('{"format": "babynn-model", "format_vers')
    assert fails("predict", "m.json", NOTES).startswith(
        "Error: model file 'm.json' is damaged: not valid JSON ("
    )


def test_model_file_missing_a_field(in_tmp):
    run("fit", NOTES, "-q", "-o", "m.json")
    doc = json.loads((in_tmp / "m.json").read_text())
    del doc["model"]["bias"]
    (in_tmp / "m.json").write_text(json.dumps(doc))
    assert (
        fails("predict", "m.json", NOTES) == "Error: model file 'm.json' is damaged: missing 'bias'"
    )


def _set(doc, path, value):
    *parents, last = path
    for key in parents:
        doc = doc[key]
    if value is DELETE:
        del doc[last]
    else:
        doc[last] = value


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("standardization", "scale"),
            [1.0, 0.0, 1.0],
            "a standardization scale is not above 0 (it divides the features)",
        ),
        (("model", "weights"), [["1"], [2.0], [3.0]], "the weights hold a str, not a number"),
        (("model", "weights"), [[True], [2.0], [3.0]], "the weights hold a bool, not a number"),
        (("model", "features"), "x0,x1,x2", "'features' is not a list"),
        (("model", "features"), ["x0", "x0", "x2"], "'features' names a column twice"),
        (("model", "targets"), [], "'targets' must list column names"),
        (("model", "bias"), [1e400], None),  # JSON's 1e400 is inf in Python
        (("model", "bias"), [10**400], "the bias values are not all finite"),
        (("model", "weights"), [[1.0], [2.0]], "the weights are not 3 × 1 numbers"),
        (("standardization", "enabled"), "yes", "'enabled' is not a bool"),
    ],
)
def test_model_files_are_checked_for_type_shape_and_range(in_tmp, path, value, message):
    run("fit", NOTES, "-q", "-o", "m.json")
    doc = json.loads((in_tmp / "m.json").read_text())
    _set(doc, path, value)
    (in_tmp / "m.json").write_text(json.dumps(doc))
    error = fails("predict", "m.json", NOTES)
    assert error.startswith("Error: model file 'm.json' is damaged: ")
    if message is not None:
        assert error == f"Error: model file 'm.json' is damaged: {message}"


@pytest.mark.parametrize(
    ("hidden", "message"),
    [([0], "'hidden' must list layer sizes"), ([2.5], "'hidden' must list"), ([True], "'hidden'")],
)
def test_network_files_are_checked_too(in_tmp, hidden, message):
    run("fit", NOTES, "-q", "--hidden", 2, "--epochs", 2, "-o", "n.json")
    doc = json.loads((in_tmp / "n.json").read_text())
    doc["model"]["hidden"] = hidden
    (in_tmp / "n.json").write_text(json.dumps(doc))
    assert message in fails("predict", "n.json", NOTES)


@pytest.mark.parametrize(
    "text",
    [
        '{"format": "babynn-model", "format_version": 2, "model": '
        + "[" * 100_000
        + "]" * 100_000
        + "}",
        '{"format": "babynn-model", "format_version": 2, "model": ' + "9" * 5000 + "}",
        '{"format": "babynn-model", "format_version": true}',
    ],
)
def test_hostile_json_is_a_one_line_error(in_tmp, text):
    (in_tmp / "m.json").write_text(text)
    assert fails("predict", "m.json", NOTES).startswith("Error: ")


def test_model_file_of_unknown_version(in_tmp):
    run("fit", NOTES, "-q", "-o", "m.json")
    doc = json.loads((in_tmp / "m.json").read_text())
    doc["format_version"] = 99
    (in_tmp / "m.json").write_text(json.dumps(doc))
    assert fails("predict", "m.json", NOTES) == (
        "Error: model file 'm.json' has format version 99; babynn 0.1.0 reads versions 1, 2, 3"
    )


def test_not_a_model_file(in_tmp):
    (in_tmp / "m.json").write_text("[1, 2]")
    assert fails("predict", "m.json", NOTES) == "Error: 'm.json' is not a babynn model file"


def test_a_model_file_past_the_size_limit_is_refused_unread(in_tmp):
    with open(in_tmp / "m.json", "wb") as f:  # sparse: 1 GiB and one byte, nothing on disk
        f.truncate((1 << 30) + 1)
    assert fails("predict", "m.json", NOTES) == (
        "Error: model file 'm.json' is larger than 1,073,741,824 bytes: not a babynn model"
    )


def test_missing_model_file(in_tmp):
    assert fails("predict", "none.json", NOTES) == (
        "Error: cannot read model file 'none.json': no such file"
    )


def test_predict_names_missing_columns_and_keeps_the_old_output(csv, in_tmp):
    run("fit", NOTES, "-q")
    (in_tmp / "out.csv").write_text("precious\n")
    path = csv("x0,y\n1,2\n")
    assert fails("predict", "model.json", path, "-o", "out.csv") == (
        "Error: 'd.csv' lacks the model's feature column(s): x1, x2"
    )
    assert (in_tmp / "out.csv").read_text() == "precious\n"


def test_predict_leaves_a_row_with_a_missing_cell_empty(csv, in_tmp):
    run("fit", NOTES, "-q")
    path = csv("x0,x1,x2\n1,2,3\n1,,3\n4,5,6\n")
    result = run("predict", "model.json", path)
    assert result.exit_code == 0
    rows = result.stdout.splitlines()
    # an empty cell alone on its line is written "" (a blank line would not be a row)
    assert rows[0] == "y" and rows[2] == '""' and len(rows) == 4
    assert np.isfinite([float(rows[1]), float(rows[3])]).all()
    assert result.stderr.startswith("1 of 3 rows not predicted (a missing feature cell")


@pytest.mark.parametrize(
    ("option", "target", "message"),
    [
        ("-o", "no/such/m.json", "Error: cannot write 'no/such/m.json': no folder 'no/such'"),
        ("-o", ".", "Error: cannot write '.': it is a directory"),
        ("--history", "nope/h.csv", "Error: cannot write 'nope/h.csv': no folder 'nope'"),
    ],
)
def test_unwritable_outputs_fail_before_training(in_tmp, option, target, message):
    assert fails("fit", NOTES, option, target) == message


def test_unwritable_prediction_output(in_tmp):
    run("fit", NOTES, "-q")
    assert fails("predict", "model.json", NOTES, "-o", "gone/p.csv") == (
        "Error: cannot write 'gone/p.csv': no folder 'gone'"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("fit", NOTES, "--epochs", "1e9"), "Error: Invalid value for '--epochs' / '-e': "),
        (("fit", NOTES, "--epochs", "0"), "Error: Invalid value for '--epochs' / '-e': "),
        (("fit", NOTES, "--tol", "nan"), "Error: Invalid value for '--tol': "),
        (("fit", NOTES, "--lr", "abc"), "Error: --lr takes a number above 0 or 'auto' (got 'abc')"),
        (("fit", NOTES, "--lr", "-1"), "Error: --lr must be a finite number above 0 (got -1)"),
        (("fit", NOTES, "--history-every", "0"), "Error: Invalid value for '--history-every': "),
        (("fit",), "Error: Missing argument 'DATA'."),
        (("nope",), "Error: No such command 'nope'."),
        (("fit", NOTES, "--bogus"), "Error: No such option: --bogus"),
        (("fit", NOTES, "--schedule", "nope"), "Error: Invalid value for '--schedule': "),
        (("fit", NOTES, "-b", "many"), "Error: --batch-size takes a whole number of rows"),
        (("fit", NOTES, "--sep", ""), "Error: --sep must be one character"),
        (("fit", NOTES, "--sep", ";;"), "Error: --sep must be one character"),
        (
            ("fit", NOTES, "--schedule", "step", "--gamma", "1"),
            "Error: --gamma must be in (0, 1)",
        ),
        (
            ("fit", NOTES, "--schedule", "exponential", "--gamma", "0"),
            "Error: --gamma must be in (0, 1)",
        ),
        (
            ("fit", NOTES, "--schedule", "cosine", "--lr-min", "1"),
            "Error: --lr-min must be below --lr",
        ),
        (("fit", NOTES, "--decay", "1e308"), "Error: Invalid value for '--decay': "),
        (("fit", NOTES, "--lr", "inf"), "Error: --lr must be a finite number above 0 (got inf)"),
        (("sweep-lr", NOTES, "--lrs", "0.1,inf"), "Error: --lrs must be a finite number above 0"),
        (
            ("sweep-lr", NOTES, "--lrs", "0.1,0.2", "--min", "0.01"),
            "Error: --lrs lists the rates itself: drop --min",
        ),
    ],
)
def test_every_usage_error_is_one_line_and_exit_2(in_tmp, args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert "╭" not in result.stderr and "Traceback" not in result.stderr


def test_a_tab_separator_may_be_written_out(csv, in_tmp):
    name = csv("a\tb\ty\n1\t2\t3\n4\t5\t7\n5\t1\t1\n2\t2\t2\n")
    assert run_json("fit", name, "--sep", "\\t", "--epochs", 3)["features"] == ["a", "b"]


@pytest.mark.parametrize("cell", ["", "n/a"])
def test_predict_needs_no_usable_target(csv, in_tmp, cell):
    """A target column that is there but blank or text: predict anyway, note why no score."""
    run("fit", csv("a,b,y\n1,2,3\n4,5,7\n5,1,1\n2,2,2\n", "train.csv"), "-q", "-o", "m.json")
    name = csv(f"a,b,y\n1,2,{cell}\n4,5,{cell}\n")
    result = run("predict", "m.json", name)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "y" and len(result.stdout.splitlines()) == 3
    assert result.stderr.startswith("no MSE or R²: ") and result.stderr.count("\n") == 1
