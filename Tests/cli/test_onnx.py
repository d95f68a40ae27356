"""nudge export and nudge import: models to and from ONNX (docs/ONNX.md), as a user runs them.

ONNX Runtime's agreement with the library is tested in bindings/python/tests/test_onnx.py; here the
commands themselves: what they write, their messages and exit statuses."""
from pathlib import Path

from conftest import run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "onnx"


def test_export_then_import_predicts_the_same(data, tmp_path):
    onnx, back = tmp_path / "model.onnx", tmp_path / "back.nudge"
    result = run("export", data["model"], "-o", onnx)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"" and b"wrote" in result.stderr
    assert onnx.read_bytes()[:2] == b"\x08\x07"  # ModelProto field 1, ir_version 7
    result = run("import", onnx, "--output", back)
    assert result.returncode == 0, result.stderr
    original = run("predict", data["model"], "--images", data["test"][0], "--probabilities")
    imported = run("predict", back, "--images", data["test"][0], "--probabilities")
    assert original.returncode == 0 and original.stdout == imported.stdout
    # The metadata travels too: the class names, the training command.
    report = run("inspect", back).stdout.decode()
    assert "top" in report and "nudge train" in report


def test_import_pytorch_model_then_evaluate(data, tmp_path):
    model = tmp_path / "torch.nudge"
    result = run("import", FIXTURES / "torch-flatten-images.onnx", "-o", model)
    assert result.returncode == 0, result.stderr
    assert b"784-32-10, relu, softmax" in result.stderr
    assert "784-32-10" in run("inspect", model).stdout.decode()


def test_import_refuses_a_model_file_and_export_an_onnx_file(data, tmp_path):
    result = run("import", data["model"], "-o", tmp_path / "x.nudge")
    assert result.returncode == 65
    assert b"is a Nudge model file, not an ONNX model" in result.stderr
    onnx = tmp_path / "m.onnx"
    assert run("export", data["model"], "-o", onnx).returncode == 0
    result = run("export", onnx, "-o", tmp_path / "y.onnx")
    assert result.returncode == 65 and b"not a Nudge model file" in result.stderr
    assert not (tmp_path / "x.nudge").exists() and not (tmp_path / "y.onnx").exists()


def test_import_names_the_unsupported_node(tmp_path):
    # A graph whose path holds a node Nudge does not import: an ONNX file edited by hand, the
    # Softmax of a PyTorch model's graph renamed to LogSoftmax (same length, so the bytes stay valid).
    data = (FIXTURES / "torch-relu-softmax.onnx").read_bytes()
    assert data.count(b"Softmax") >= 1
    damaged = tmp_path / "log_softmax.onnx"
    damaged.write_bytes(data.replace(b"\x22\x07Softmax", b"\x22\x07Hardmax"))
    result = run("import", damaged, "-o", tmp_path / "x.nudge")
    assert result.returncode == 65, result.stderr
    assert b"(Hardmax) is not supported" in result.stderr


def test_outputs_are_checked_before_anything_is_written(data, tmp_path):
    before = data["model"].read_bytes()
    result = run("export", data["model"], "-o", data["model"])
    assert result.returncode == 64 and b"is the same file as the model" in result.stderr
    assert data["model"].read_bytes() == before
    result = run("export", data["model"], "-o", tmp_path)
    assert result.returncode == 73 and b"is not a regular file (it is a directory)" in result.stderr
    result = run("import", tmp_path / "missing.onnx", "-o", tmp_path / "x.nudge")
    assert result.returncode == 66 and b"cannot open ONNX file" in result.stderr
