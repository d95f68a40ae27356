"""nudge predict: CSV with a header, probabilities, Kaggle's exact format; nothing but data on stdout."""
import csv
import io

from conftest import CLASSES, run


def predict(data, *extra):
    return run("predict", data["model"], "--images", data["test"][0], *extra)


def test_default_csv(data):
    result = predict(data)
    assert result.returncode == 0 and result.stderr == b""
    rows = list(csv.reader(io.StringIO(result.stdout.decode())))
    assert rows[0] == ["index", "label"]
    assert [int(r[0]) for r in rows[1:]] == list(range(len(data["test"][2])))
    assert all(0 <= int(r[1]) < CLASSES for r in rows[1:])


def test_probabilities(data):
    rows = list(csv.reader(io.StringIO(predict(data, "--probabilities").stdout.decode())))
    assert rows[0] == ["index", "label"] + [f"p{c}" for c in range(CLASSES)]
    for row in rows[1:]:
        p = [float(x) for x in row[2:]]
        assert abs(sum(p) - 1) < 1e-4
        assert int(row[1]) == p.index(max(p))


def test_kaggle_format_exactly(data):
    result = predict(data, "--kaggle")
    assert result.returncode == 0 and result.stderr == b""
    out = result.stdout
    count = len(data["test"][2])
    assert out.startswith(b"ImageId,Label\n") and out.endswith(b"\n")
    assert b"\r" not in out and b" " not in out
    lines = out.decode().split("\n")[:-1]
    assert len(lines) == count + 1
    labels = [line.split(",")[1] for line in predict(data).stdout.decode().splitlines()[1:]]
    assert lines[1:] == [f"{i + 1},{label}" for i, label in enumerate(labels)]


def test_output_file_matches_stdout(data, tmp_path):
    target = tmp_path / "predictions.csv"
    result = predict(data, "--output", target)
    assert result.returncode == 0 and result.stdout == b"" and result.stderr == b""
    assert target.read_bytes() == predict(data).stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]


def test_failed_run_leaves_an_earlier_output_alone(data, tmp_path):
    target = tmp_path / "predictions.csv"
    target.write_text("earlier\n")
    result = run("predict", tmp_path / "missing.nudge", "--images", data["test"][0], "--output", target)
    assert result.returncode == 66
    assert target.read_text() == "earlier\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]
