"""CSV input, in the Kaggle digit-recognizer layout: train.csv with a `label` column first, test.csv
with pixels only, and a submission written by `predict --kaggle`; and the flags for other layouts:
the label anywhere (--label-column), no header, other delimiters, columns left out, a weight column."""
import json
import random

import pytest

from conftest import CLASSES, FEATURES, SIDE, run


def write_kaggle(folder, count, seed, labelled):
    """Raw 0..255 pixels in the competition's layout; returns the path and the labels."""
    rng = random.Random(seed)
    header = (["label"] if labelled else []) + [f"pixel{i}" for i in range(FEATURES)]
    lines = [",".join(header)]
    labels = []
    for _ in range(count):
        label = rng.randrange(CLASSES)
        pixels = [(200 if r == label else 20) + rng.randrange(50) for r in range(SIDE) for _ in range(SIDE)]
        lines.append(",".join(map(str, ([label] if labelled else []) + pixels)))
        labels.append(label)
    path = folder / ("train.csv" if labelled else "test.csv")
    path.write_text("\n".join(lines) + "\n")
    return path, labels


def test_kaggle_train_evaluate_and_submission(tmp_path):
    train, _ = write_kaggle(tmp_path, 400, seed=11, labelled=True)
    test, truth = write_kaggle(tmp_path, 50, seed=12, labelled=False)
    model = tmp_path / "digits.nudge"
    trained = run("train", "--data", train, "--hidden", "16", "--epochs", "15", "--normalize", "global",
                  "--seed", "3", "-o", model)
    assert trained.returncode == 0, trained.stderr.decode()
    evaluated = run("evaluate", model, "--data", train, "--format", "json", "--min-accuracy", "0.95")
    assert evaluated.returncode == 0, evaluated.stderr.decode() + evaluated.stdout.decode()

    predicted = run("predict", model, "--data", test, "--kaggle")
    assert predicted.returncode == 0, predicted.stderr.decode()
    text = predicted.stdout.decode()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert lines[0] == "ImageId,Label"
    assert len(lines) == 1 + 50
    ids = [int(line.split(",")[0]) for line in lines[1:]]
    assert ids == list(range(1, 51))
    labels = [int(line.split(",")[1]) for line in lines[1:]]
    # Raw pixels go straight in: the model applies the normalisation it was trained with.
    assert sum(p == t for p, t in zip(labels, truth)) >= 48


def test_csv_without_label_column_cannot_train(tmp_path):
    test, _ = write_kaggle(tmp_path, 20, seed=1, labelled=False)
    result = run("train", "--data", test, "--epochs", "1", "-o", tmp_path / "m.nudge")
    assert result.returncode == 65
    assert b"has no label column: name it with --label-column" in result.stderr


def test_csv_labels_flag_is_for_idx(tmp_path):
    train, _ = write_kaggle(tmp_path, 20, seed=1, labelled=True)
    result = run("train", "--data", train, "--labels", train, "--epochs", "1", "-o", tmp_path / "m.nudge")
    assert result.returncode == 64
    assert b"keeps its labels in a column (named label, or chosen with --label-column)" in result.stderr


def test_bad_csv_cell_names_line_and_column(tmp_path):
    train, _ = write_kaggle(tmp_path, 5, seed=1, labelled=True)
    lines = train.read_text().splitlines()
    cells = lines[3].split(",")
    cells[2] = "x7"
    lines[3] = ",".join(cells)
    train.write_text("\n".join(lines) + "\n")
    result = run("train", "--data", train, "--epochs", "1", "-o", tmp_path / "m.nudge")
    assert result.returncode == 65
    assert b":4:3:" in result.stderr, result.stderr


def write_passengers(folder, count, seed, delimiter=",", header=True, name="passengers.csv"):
    """A Kaggle-style file: an id first, text in quotes, the label in the middle, a weight last.
    Class 1 has a large `a`; returns the path and the labels."""
    rng = random.Random(seed)
    lines = [delimiter.join(["PassengerId", "a", "Name", "Survived", "b", "w"])] if header else []
    labels = []
    for i in range(count):
        label = rng.randrange(2)
        a = label * 4 + rng.random()
        lines.append(delimiter.join([str(1000 + i), f"{a:.3f}", f'"Name {i}{delimiter} Jr."', str(label),
                                     f"{rng.random():.3f}", f"{rng.random() * 2:.2f}"]))
        labels.append(label)
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path, labels


def error_line(result):
    return result.stderr.decode().strip().splitlines()[0]


def test_label_in_the_middle_with_columns_left_out(tmp_path):
    data, truth = write_passengers(tmp_path, 200, seed=5)
    model = tmp_path / "m.nudge"
    layout = ["--label-column", "Survived", "--ignore-columns", "PassengerId,Name", "--ignore-columns", "5"]
    trained = run("train", "--data", data, *layout, "--hidden", "8", "--epochs", "30", "--seed", "1",
                  "--normalize", "global", "-q", "-o", model)
    assert trained.returncode == 0, trained.stderr.decode()
    inspected = run("inspect", model, "--format", "json")
    assert json.loads(inspected.stdout)["layer_sizes"][0] == 2  # a and b: the id, name and weight left out
    evaluated = run("evaluate", model, "--data", data, *layout, "--min-accuracy", "0.95", "--format", "json")
    assert evaluated.returncode == 0, evaluated.stderr.decode() + evaluated.stdout.decode()
    assert json.loads(evaluated.stdout)["samples"] == 200
    # predict reads the weight column and leaves it out, like an ignored one.
    predicted = run("predict", model, "--data", data, "--label-column", "3", "--ignore-columns", "0,Name",
                    "--weight-column", "w")
    assert predicted.returncode == 0, predicted.stderr.decode()
    labels = [int(line.split(",")[1]) for line in predicted.stdout.decode().splitlines()[1:]]
    assert len(labels) == 200 and sum(p == t for p, t in zip(labels, truth)) >= 190


@pytest.mark.parametrize("delimiter, flag", [(";", ";"), ("\t", "tab"), ("\t", "\\t"), ("\t", "\t")])
def test_no_header_label_by_index_and_delimiters(tmp_path, delimiter, flag):
    data, _ = write_passengers(tmp_path, 200, seed=6, delimiter=delimiter, header=False)
    model = tmp_path / "m.nudge"
    layout = ["--no-header", "--delimiter", flag, "--label-column", "3", "--ignore-columns", "0,2,5"]
    trained = run("train", "--data", data, *layout, "--hidden", "8", "--epochs", "30", "--seed", "1",
                  "--normalize", "global", "-q", "-o", model)
    assert trained.returncode == 0, trained.stderr.decode()
    evaluated = run("evaluate", model, "--data", data, *layout, "--min-accuracy", "0.9")
    assert evaluated.returncode == 0, evaluated.stderr.decode() + evaluated.stdout.decode()
    # Without the flags the file does not read: the quoted name is not a number.
    plain = run("evaluate", model, "--data", data)
    assert plain.returncode == 65


def test_weight_column_in_train_and_evaluate(tmp_path):
    data, truth = write_passengers(tmp_path, 200, seed=7)
    layout = ["--label-column", "Survived", "--ignore-columns", "0,2"]
    weighted, ignored = tmp_path / "weighted.nudge", tmp_path / "ignored.nudge"
    common = ["--hidden", "4", "--epochs", "3", "--seed", "1", "--normalize", "global", "-q"]
    assert run("train", "--data", data, *layout, "--weight-column", "w", *common, "-o", weighted).returncode == 0
    assert run("train", "--data", data, *layout, "--ignore-columns", "w", *common, "-o", ignored).returncode == 0
    assert json.loads(run("inspect", weighted, "--format", "json").stdout)["layer_sizes"][0] == 2
    probabilities = [run("predict", m, "--data", data, *layout, "--ignore-columns", "w", "--probabilities").stdout
                     for m in (weighted, ignored)]
    assert probabilities[0] != probabilities[1]  # the weights changed what was learnt
    # Evaluation: weight 1 on the first 60 rows and 0 on the rest measures the first 60 rows alone.
    lines = data.read_text().splitlines()
    rows = [line.rsplit(",", 1)[0] + ("," + ("1" if i < 60 else "0")) for i, line in enumerate(lines[1:])]
    masked, first = tmp_path / "masked.csv", tmp_path / "first.csv"
    masked.write_text("\n".join([lines[0]] + rows) + "\n")
    first.write_text("\n".join([lines[0]] + rows[:60]) + "\n")
    result = run("evaluate", ignored, "--data", masked, *layout, "--weight-column", "w", "--format", "json")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    alone = json.loads(run("evaluate", ignored, "--data", first, *layout, "--ignore-columns", "w", "--format",
                           "json").stdout)
    assert report["loss_weighted"] is True and report["samples"] == 200 and alone["samples"] == 60
    assert report["weighted_accuracy"] == pytest.approx(alone["accuracy"], abs=1e-12)
    assert report["loss"] == pytest.approx(alone["loss"], rel=1e-6)
    assert report["loss"] != pytest.approx(json.loads(run("evaluate", ignored, "--data", masked, *layout,
                                                          "--ignore-columns", "w", "--format", "json").stdout)["loss"])
    text = run("evaluate", ignored, "--data", masked, *layout, "--weight-column", "w").stdout.decode()
    assert "weighted  " in text and ", weighted)" in text
    plain = json.loads(run("evaluate", ignored, "--data", masked, *layout, "--ignore-columns", "w", "--format",
                           "json").stdout)
    assert plain["weighted_accuracy"] is None and plain["loss_weighted"] is False
    # --min-accuracy gates on the weighted accuracy when there are weights.
    gate = run("evaluate", ignored, "--data", masked, *layout, "--weight-column", "w",
               "--min-accuracy", str(min(1.0, report["weighted_accuracy"] + 1e-9)))
    assert gate.returncode == (2 if report["weighted_accuracy"] < 1 else 0)


def test_bad_weights_name_line_and_column(tmp_path, data):
    path = tmp_path / "w.csv"
    path.write_text("x,y,w\n1,2,0.5\n3,4,-2\n")
    result = run("predict", data["model"], "--data", path, "--weight-column", "w")
    assert result.returncode == 65
    assert error_line(result) == f'nudge: error: {path}:3:3: column "w": weight -2 is negative; weights are 0 or more'


@pytest.mark.parametrize("flags, message", [
    (["--label-column", "Survivors"],
     'nudge: error: {data} has no column named "Survivors" for the labels (its header: "PassengerId", "a", "Name", '
     '"Survived", "b", "w")'),
    (["--label-column", "9"], "nudge: error: label column index 9 is past the last column: {data} has 6 (0 to 5)"),
    (["--ignore-columns", "Id"],
     'nudge: error: {data} has no column named "Id" to ignore (its header: "PassengerId", "a", "Name", "Survived", '
     '"b", "w")'),
    (["--ignore-columns", "6"], "nudge: error: ignored column index 6 is past the last column: {data} has 6 (0 to 5)"),
    (["--ignore-columns", "0,PassengerId"],
     'nudge: error: column index 0 ("PassengerId") is given twice among the ignored columns'),
    (["--label-column", "Survived", "--ignore-columns", "Survived"],
     'nudge: error: column index 3 ("Survived") is both the label column and ignored; a column has one role'),
    (["--label-column", "Survived", "--ignore-columns", "PassengerId,Name,w,w"],
     'nudge: error: column index 5 ("w") is given twice among the ignored columns'),
    (["--no-header", "--label-column", "Survived"],
     "Error: --label-column Survived is a column name, but --no-header says the file has no header row: give the "
     "column's 0-based index"),
    (["--ignore-columns", "a,,b"], "Error: --ignore-columns has an empty column name"),
    (["--label-column", "-1"], "Error: --label-column is -1; a column index is 0 or more (0 is the first column)"),
    (["--delimiter", "ab"],
     "Error: --delimiter is \"ab\"; give one ASCII character other than a double quote, CR or LF, such as ';', or tab"),
    (["--delimiter", '"'],
     "Error: --delimiter is \"\"\"; give one ASCII character other than a double quote, CR or LF, such as ';', or tab"),
])
def test_bad_layout_flags_are_usage_errors(tmp_path, flags, message):
    data, _ = write_passengers(tmp_path, 10, seed=8)
    for command in (["train", "--data", data, "-o", tmp_path / "m.nudge"],
                    ["predict", tmp_path / "missing-model.nudge", "--data", data]):
        if command[0] == "predict" and message.startswith("nudge: error:"):
            continue  # predict reads the model before the data
        result = run(*command, *flags)
        assert result.returncode == 64, result.stderr.decode()
        assert error_line(result) == message.format(data=data)


def test_csv_flags_with_idx_data_are_refused(data, tmp_path):
    images, labels, _ = data["train"]
    result = run("train", "--images", images, "--labels", labels, "--no-header", "--delimiter", ";",
                 "--ignore-columns", "0", "-o", tmp_path / "m.nudge")
    assert result.returncode == 64
    assert error_line(result) == f"nudge: error: --no-header, --delimiter and --ignore-columns are for CSV files; {images} is an IDX file"
    result = run("predict", data["model"], "--images", images, "--label-column", "label")
    assert result.returncode == 64
    assert error_line(result) == f"nudge: error: --label-column is for CSV files; {images} is an IDX file"
