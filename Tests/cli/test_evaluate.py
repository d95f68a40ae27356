"""nudge evaluate: accuracy, loss, per-class accuracy, confusion matrix; the --min-accuracy gate."""
import json

from conftest import CLASSES, run


def evaluate(data, *extra):
    return run("evaluate", data["model"], "--images", data["test"][0], "--labels", data["test"][1], *extra)


def test_json_report_is_consistent(data):
    result = evaluate(data, "--format", "json")
    assert result.returncode == 0 and result.stderr == b""
    report = json.loads(result.stdout)
    matrix = report["confusion_matrix"]
    assert len(matrix) == CLASSES and all(len(row) == CLASSES for row in matrix)
    labels = data["test"][2]
    assert report["samples"] == len(labels) == sum(map(sum, matrix))
    assert [sum(row) for row in matrix] == [labels.count(c) for c in range(CLASSES)]
    assert report["correct"] == sum(matrix[c][c] for c in range(CLASSES))
    assert report["accuracy"] == report["correct"] / report["samples"]
    # A fifth of the test labels are random, so the model cannot be perfect, but it is good.
    assert 0.6 < report["accuracy"] < 1
    assert report["loss"] > 0 and report["loss_function"] == "softmax_cross_entropy"
    assert [c["name"] for c in report["classes"]] == ["top", "upper", "lower", "bottom"]
    for c in report["classes"]:
        assert c["accuracy"] == c["correct"] / c["samples"]


def test_text_report_has_an_aligned_confusion_matrix(data):
    result = evaluate(data)
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    assert lines[3].startswith("accuracy  0.")
    start = next(i for i, line in enumerate(lines) if line.startswith("confusion matrix"))
    header, rows = lines[start + 1], lines[start + 2:start + 2 + CLASSES]
    assert header.split() == [str(c) for c in range(CLASSES)]
    assert len(set(map(len, [header, *rows]))) == 1
    assert [int(row.split()[0]) for row in rows] == list(range(CLASSES))
    assert any(line.startswith("1 upper") for line in lines)


def test_min_accuracy_passes_and_fails(data):
    accuracy = json.loads(evaluate(data, "--format", "json").stdout)["accuracy"]
    passed = evaluate(data, "--min-accuracy", str(round(accuracy - 0.01, 4)))
    assert passed.returncode == 0 and passed.stderr == b""
    failed = evaluate(data, "--min-accuracy", str(round(accuracy + 0.01, 4)))
    assert failed.returncode == 2
    assert failed.stdout == passed.stdout            # the report is still printed
    assert failed.stderr.decode().startswith("nudge: error: accuracy ")
    assert failed.stderr.count(b"\n") == 1
