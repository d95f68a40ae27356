"""Help and version: every command explains itself, with examples and the exit statuses."""
import re

import pytest

from conftest import run

COMMANDS = ["train", "evaluate", "predict", "inspect", "export", "import"]


def test_version_is_the_library_version():
    result = run("--version")
    assert result.returncode == 0
    assert re.fullmatch(rb"nudge \d+\.\d+\.\d+\n", result.stdout)


def test_help_lists_commands_and_exit_statuses():
    result = run("--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    for command in COMMANDS:
        assert command in text
    for code in ["0", "1", "2", "3", "64", "65", "66", "73", "74", "130"]:
        assert re.search(rf"^\s+{code}  \S", text, re.M), code


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help_with_examples(command):
    result = run(command, "--help")
    assert result.returncode == 0
    assert "EXAMPLES:" in result.stdout.decode()
    assert f"nudge {command}" in result.stdout.decode()


@pytest.mark.parametrize("command, some", [
    ("train", {"--images", "--batch-size", "--no-shuffle", "--dropout", "--output", "--label-column", "--no-header"}),
    ("evaluate", {"--min-accuracy", "--delimiter", "--ignore-columns", "--weight-column"}),
    ("predict", {"--kaggle", "--probabilities", "--label-column"}),
])
def test_docs_name_every_flag(command, some):
    # docs/CLI.md documents every flag, the generated training option flags and the CSV flags included.
    from pathlib import Path
    docs = (Path(__file__).resolve().parents[2] / "docs/CLI.md").read_text()
    help_text = run(command, "--help").stdout.decode()
    flags = set(re.findall(r"^ {2}(?:-\w, )?(--[a-z0-9-]+)", help_text, re.M))
    flags |= set(re.findall(r"(?<=/)(--no-[a-z0-9-]+)", help_text))
    assert some <= flags
    missing = sorted(f for f in flags - {"--help", "--version"} if not re.search(rf"`{f}(?![\w-])", docs))
    assert not missing, missing
