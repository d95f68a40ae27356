"""nudge inspect: what a model file holds, as text and as JSON."""
import json
import re

from conftest import CLASSES, FEATURES, run

PARAMETERS = (FEATURES + 1) * 16 + (16 + 1) * CLASSES


def test_text(data):
    result = run("inspect", data["model"])
    assert result.returncode == 0 and result.stderr == b""
    text = result.stdout.decode()
    fields = dict(line.split(None, 1) for line in text.splitlines() if not line.startswith(" ") and " " in line)
    assert fields["format"] == "version 1"
    assert fields["architecture"] == f"{FEATURES}-16-{CLASSES}"
    assert fields["parameters"] == f"{PARAMETERS:,}"
    assert "normalization" not in fields
    assert "relu" in text and "softmax" in text
    assert re.search(r"^  command +nudge train ", text, re.M)


def test_json(data):
    report = json.loads(run("inspect", data["model"], "--format", "json").stdout)
    assert report["format_version"] == 1
    assert report["file_size"] == data["model"].stat().st_size
    assert report["layer_sizes"] == [FEATURES, 16, CLASSES]
    assert report["activations"] == ["relu", "softmax"]
    assert report["parameter_count"] == PARAMETERS
    assert sum(layer["parameters"] for layer in report["layers"]) == PARAMETERS
    assert {"created", "command", "class_names", "training", "result"} <= set(report["metadata"])
