"""Every training option's flag, read from docs/OPTIONS.md (generated from the option table, and
checked against it by `make test-header`), so that an option added to the table is covered here
without a change to this file:

- a value just outside an option's range is a usage error (64) whose message names the flag, never
  the C field (`options->batch_size`) or the Swift property (`batchSize`);
- a value inside it is recorded in the model's `training` metadata, under the flag's name with
  underscores (`batch_size` for --batch-size).
"""
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import run

OPTIONS_MD = Path(__file__).resolve().parents[2] / "docs/OPTIONS.md"

NUMERIC_KINDS = {"count", "float", "double", "floats", "uint64"}


@dataclass
class Option:
    c_name: str             # the C field, snake_case
    swift: str | None       # the property of TrainingOptions, or None when the core has none
    flag: str | None        # the CLI flag, or None when the CLI does not offer the option
    by_hand: bool           # whether the CLI converts it by hand (its flag is not generated)
    kind: str               # count, float, double, floats, uint64, flag, or a C enumeration
    default: str            # as C writes it: 10, 0.001, 1, NUDGE_OPTIMIZER_ADAM, none
    accepts: str            # the range in words, or the choices

    @property
    def whole(self):
        return self.kind == "count"

    @property
    def metadata_key(self):
        return self.flag[2:].replace("-", "_")


def code(cell):
    return cell.strip().strip("`") if cell.strip() not in ("–", "") else None


def table():
    """The options of docs/OPTIONS.md, in table order."""
    options = []
    for line in OPTIONS_MD.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 9, line
        c_name, swift, _python, cli, kind, default, accepts, _since, _meaning = cells
        options.append(Option(c_name=code(c_name), swift=code(swift), flag=code(cli.removesuffix(" (by hand)")),
                              by_hand=cli.endswith("(by hand)"), kind=kind.strip("`"), default=code(default) or "",
                              accepts=accepts))
    assert len(options) > 20, "docs/OPTIONS.md has lost its table"
    return options


OPTIONS = table()
BY_NAME = {o.c_name: o for o in OPTIONS}
OFFERED = [o for o in OPTIONS if o.flag]


def number(text):
    """A bound: a literal, or another option (its default)."""
    if text in BY_NAME:
        return float(BY_NAME[text].default)
    return float(text)


@dataclass
class Range:
    lower: float | None = None
    lower_inclusive: bool = True
    upper: float | None = None
    upper_inclusive: bool = True
    upper_option: str | None = None     # the option an upper bound is, if it is one


def parse_range(option):
    """The range docs/OPTIONS.md gives in words (Sources/nudge-options/Ranges.swift writes them), or
    None when the option has none."""
    text = option.accepts
    if not text:
        return None
    patterns = [
        (r"(\S+) or more", lambda m: Range(lower=number(m[1]))),
        (r"(\S+) to (\S+)", lambda m: Range(lower=number(m[1]), upper=number(m[2]))),
        (r"a finite number, (\S+) or more", lambda m: Range(lower=number(m[1]))),
        (r"a finite number above (\S+)", lambda m: Range(lower=number(m[1]), lower_inclusive=False)),
        (r"(at least|above) (\S+) and (at most|below) (\S+)",
         lambda m: Range(lower=number(m[2]), lower_inclusive=m[1] == "at least", upper=number(m[4]),
                         upper_inclusive=m[3] == "at most", upper_option=m[4] if m[4] in BY_NAME else None)),
        (r"(at most|below) (\S+)",
         lambda m: Range(upper=number(m[2]), upper_inclusive=m[1] == "at most",
                         upper_option=m[2] if m[2] in BY_NAME else None)),
    ]
    for pattern, build in patterns:
        if m := re.fullmatch(pattern, text):
            return build(m)
    pytest.fail(f"{option.c_name}: range {text!r} is worded in a way this test does not know; teach parse_range")


def spelt(value, whole):
    return str(int(value)) if whole else repr(float(value))


def outside_values(option):
    """Values just outside the option's range, one per bound, and for real numbers nan and inf."""
    bounds = parse_range(option)
    values = []
    if bounds.lower is not None:
        below = bounds.lower - 1 if option.whole else bounds.lower - (abs(bounds.lower) * 0.01 or 0.001)
        values.append(spelt(below if bounds.lower_inclusive else bounds.lower, option.whole))
    if bounds.upper is not None:
        above = bounds.upper + 1 if option.whole else bounds.upper + (abs(bounds.upper) * 0.01 or 0.001)
        values.append(spelt(above if bounds.upper_inclusive else bounds.upper, option.whole))
    if not option.whole:
        values += ["nan", "inf"]
    return values


RANGED = [o for o in OFFERED if o.kind in NUMERIC_KINDS and o.accepts]
OUT_OF_RANGE = [(o, v) for o in RANGED for v in outside_values(o)]


def test_the_table_has_options_with_ranges():
    assert len(RANGED) >= 15
    assert {"--batch-size", "--learning-rate", "--min-learning-rate", "--dropout"} <= {o.flag for o in RANGED}


# Names that are a C field or a Swift property and not also a word of a flag: `batch_size` and
# `batchSize` are never right in a message of the tool; `epochs` is, as part of --epochs.
C_AND_SWIFT_NAMES = {n for o in OPTIONS for n in (o.c_name, o.swift) if n and ("_" in n or n != n.lower())}
FLAG = r"--[a-z0-9]+(?:-[a-z0-9]+)*(?![\w])"


@pytest.mark.parametrize("option,value", OUT_OF_RANGE, ids=[f"{o.flag}={v}" for o, v in OUT_OF_RANGE])
def test_a_value_outside_the_range_is_a_usage_error_naming_the_flag(data, tmp_path, option, value):
    model = tmp_path / "m.nudge"
    result = run("train", "--images", data["train"][0], "--labels", data["train"][1], f"{option.flag}={value}",
                 "-o", model)
    err = result.stderr.decode()
    assert result.returncode == 64, err
    assert result.stdout == b"" and not model.exists()
    # The message is about the flag: it comes first, as the subject.
    assert re.match(rf"(Error|nudge: error): {re.escape(option.flag)}(?![\w-]) ", err), err
    assert "options->" not in err
    words = re.sub(FLAG, "", err)
    for name in C_AND_SWIFT_NAMES | {option.c_name, option.swift} - {option.flag[2:], None}:
        assert name not in words, f"{name!r} in {err!r}"


def test_the_input_dropout_rate_is_named_by_its_flag(data, tmp_path):
    # --input-dropout is entry 0 of the library's dropout rates, a table option with a flag of its own.
    dropout = BY_NAME["dropout"]
    for value in outside_values(dropout):
        result = run("train", "--images", data["train"][0], "--labels", data["train"][1],
                     f"--input-dropout={value}", "-o", tmp_path / "m.nudge")
        err = result.stderr.decode()
        assert result.returncode == 64, err
        assert re.match(r"Error: --input-dropout ", err) and "dropout[" not in err, err


def inside_value(option, chosen):
    """A value in the option's range and not its default; `chosen` holds those of earlier options,
    for a range bounded by another option."""
    default = float(option.default)
    bounds = parse_range(option)
    if bounds is None:
        return spelt(default + 1, whole=True)
    if option.whole:
        value = (bounds.lower if bounds.lower is not None else default) + 1
        return spelt(value + 1 if value == default else value, whole=True)
    upper = float(chosen[bounds.upper_option]) if bounds.upper_option else bounds.upper
    if bounds.lower is not None and upper is not None:
        value = (bounds.lower + upper) / 2
        return spelt((bounds.lower + value) / 2 if value == default else value, whole=False)
    if bounds.lower is not None:
        return spelt(default * 2 if default > 0 else bounds.lower + 0.5, whole=False)
    return spelt(upper / 2, whole=False)


def choice_default(option):
    """NUDGE_OPTIMIZER_ADAM for nudge_optimizer: adam."""
    return option.default.removeprefix(option.kind.upper() + "_").lower()


def test_every_option_is_recorded_under_its_metadata_key(data, tmp_path):
    """One run with every option given a value other than its default: the model's `training`
    metadata records each under the flag's name with underscores."""
    generated = [o for o in OFFERED if not o.by_hand]
    args, expected, chosen = [], {}, {}
    for option in generated:
        if option.kind == "flag":
            on = option.default != "1"
            args.append(option.flag if on else "--no-" + option.flag[2:])
            expected[option.metadata_key] = on
        elif option.kind in NUMERIC_KINDS:
            value = inside_value(option, chosen)
            chosen[option.c_name] = value
            args.append(f"{option.flag}={value}")
            expected[option.metadata_key] = int(value) if option.whole or option.kind == "uint64" else float(value)
        else:
            names = [name.strip() for name in option.accepts.split(",")]
            value = next(name for name in names if name != choice_default(option))
            args.append(f"{option.flag}={value}")
            expected[option.metadata_key] = value
    assert {"--no-shuffle", "--optimizer=sgd", "--batch-size=2", "--epochs=1"} <= set(args)

    model = tmp_path / "m.nudge"
    result = run("train", "--images", data["train"][0], "--labels", data["train"][1], "--hidden", "8",
                 *args, "-q", "-o", model)
    assert result.returncode == 0, result.stderr.decode()
    meta = json.loads(run("inspect", model, "--format", "json").stdout)["metadata"]
    training = json.loads(meta["training"])
    # Every option is recorded, and nothing else without dropout.
    assert set(training) == {o.metadata_key for o in generated}
    for key, value in expected.items():
        if isinstance(value, float):
            assert math.isclose(training[key], value, rel_tol=1e-6), key
        else:
            assert training[key] == value, key
