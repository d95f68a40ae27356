"""CSV input, in the Kaggle digit-recognizer layout: train.csv with a `label` column first, test.csv
with pixels only, and a submission written by `predict --kaggle`."""
import random

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
    assert b"no label column" in result.stderr


def test_csv_labels_flag_is_for_idx(tmp_path):
    train, _ = write_kaggle(tmp_path, 20, seed=1, labelled=True)
    result = run("train", "--data", train, "--labels", train, "--epochs", "1", "-o", tmp_path / "m.nudge")
    assert result.returncode == 64
    assert b"column named label" in result.stderr


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
