"""The training options as Python offers them, driven by the option table (nudge/_options.py, generated
from Sources/nudge-options/Table.swift): every option of the table is a keyword of Network.fit with
its default, is checked before the C call with its Python name, reaches the C struct, and is a
parameter of the scikit-learn estimators. A new row of the table is covered here without a new test."""

import ctypes
import inspect
import math
import os
import shutil
import subprocess

import numpy as np
import pytest

import nudge
from nudge import _checks, _lib, _options, _settings

from conftest import REPO_ROOT

OPTIONS = _options.OPTIONS
KEYWORDS = [option.keyword for option in OPTIONS]
X = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]], dtype=np.float32)
Y = np.array([0, 1, 0, 1])
LAYERS = [2, 3, 2]  # a hidden layer, so that dropout has an entry for it
CONTEXT = {"learning_rate": 0.01}  # for the ranges that name another option (min_learning_rate)
FIELDS = [name for name, _ in _options.C_FIELDS]
# Fields that are pointers or callbacks: fit sets them for its own data, not from an option's value.
POINTERS = {name for name, c_type in _options.C_FIELDS if "*" in c_type or c_type.endswith("_fn")}

# What fit's signature shows for the options it converts by hand, and the table default each stands for.
CUSTOM_DEFAULTS = {"learning_rate": None, "early_stopping": False, "dropout": None, "normalize": None}


def _network():
    return nudge.Network(LAYERS, hidden="tanh", seed=0)


@pytest.fixture
def no_c_training(monkeypatch):
    """Fails the test if a training call or a learning rate computation reaches the library."""
    def refuse(*_):
        raise AssertionError("the C call was reached: the option should have been refused in Python")
    for name in ("nudge_trainer_create", "nudge_trainer_train", "nudge_trainer_train_labels", "nudge_learning_rate_at"):
        monkeypatch.setattr(_lib.lib, name, refuse)


@pytest.fixture
def recorded(monkeypatch):
    """Replaces the C training call by one that records the options struct it is given (the trainer is
    still created by the library, which checks the struct too): a list of {field: value}."""
    calls = []

    def record(_trainer, _x, _t, _count, options, _report):
        struct = options._obj
        fields = {name: getattr(struct, name) for name in FIELDS if name not in POINTERS}
        fields["dropout"] = [struct.dropout[i] for i in range(struct.dropout_count)]
        calls.append(fields)
        return _lib.OK
    monkeypatch.setattr(_lib.lib, "nudge_trainer_train_labels", record)
    return calls


# -- the table itself ------------------------------------------------------------------------------------

def test_the_table_is_what_python_offers():
    assert len(KEYWORDS) == len(set(KEYWORDS)) and {"epochs", "validation_split", "beta1", "min_delta"} <= set(KEYWORDS)
    assert set(_options.BY_KEYWORD) == set(KEYWORDS)
    assert {name for name, _ in _options.C_FIELDS} >= {option.field for option in OPTIONS}
    # Each option fit converts by hand has its code, and only those.
    assert set(_settings.CUSTOM) == {option.keyword for option in OPTIONS if not option.generated}
    assert set(CUSTOM_DEFAULTS) == set(_settings.CUSTOM)


def test_ctypes_struct_is_the_table():
    assert [name for name, _ in _lib.nudge_train_options._fields_] == FIELDS
    for (name, c_type), (_, ctype) in zip(_options.C_FIELDS, _lib.nudge_train_options._fields_):
        assert _lib.C_TYPES[c_type] is ctype, name


@pytest.mark.parametrize("key", sorted(_options.CHOICES))
def test_choices_are_the_header_constants(key):
    from test_abi import DEFINES
    prefix = key.upper() + "_"
    assert _options.CHOICES[key] == {name[len(prefix):].lower(): value for name, value in DEFINES.items()
                                     if name.startswith(prefix)}


# -- (a) fit's signature and docs ---------------------------------------------------------------------------

@pytest.mark.parametrize("option", OPTIONS, ids=KEYWORDS)
def test_fit_signature_lists_the_option_with_its_default(option):
    for signature in (inspect.signature(nudge.Network.fit), inspect.signature(_network().fit)):
        parameter = signature.parameters[option.keyword]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
        expected = option.default if option.generated else CUSTOM_DEFAULTS[option.keyword]
        assert parameter.default == expected and type(parameter.default) is type(expected)


def test_fit_signature_and_docs():
    parameters = list(inspect.signature(nudge.Network.fit).parameters)
    assert parameters == ["self", "X", "y"] + KEYWORDS + ["sample_weight", "validation_data", "verbose", "checkpoint",
                                                          "checkpoint_every", "resume", "comm", "data"]
    doc = inspect.getdoc(nudge.Network.fit)
    for option in OPTIONS:
        assert f"\n{option.keyword} : " in doc, option.keyword
        if option.generated:
            assert " ".join(option.doc.split()[:4]) in " ".join(doc.split()), option.keyword


def test_unknown_keyword_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="unexpected keyword argument 'validation_fraction'"):
        _network().fit(X, Y, validation_fraction=0.2, verbose=False)
    with pytest.raises(TypeError, match="'epoch'"):
        _network().fit(X, Y, epoch=3, verbose=False)


def test_fit_defaults_are_the_library_defaults(recorded):
    """fit with no option passes the struct nudge_train_options_init fills (Adam's learning rate)."""
    _network().fit(X, Y, verbose=False)
    defaults = _settings.new_options()
    for name in FIELDS:
        if name not in POINTERS:
            assert recorded[0][name] == getattr(defaults, name), name
    assert recorded[0]["dropout"] == []


def test_learning_rates_defaults_are_the_table_defaults():
    for name, parameter in inspect.signature(nudge.learning_rates).parameters.items():
        if name in _options.BY_KEYWORD and parameter.default is not inspect.Parameter.empty:
            assert parameter.default == _options.BY_KEYWORD[name].default, name


# -- (b) values out of range: refused in Python, by the Python keyword -----------------------------------------

def _bound(bound, values):
    return values[bound] if isinstance(bound, str) else bound


def _beside(value, direction, kind):
    """The nearest value past `value` towards `direction` as the C field would hold it."""
    if kind == "count":
        return value + (1 if direction > 0 else -1)
    if kind == "double":
        return math.nextafter(float(value), direction)
    return float(np.nextafter(np.float32(value), np.float32(direction)))


def _outside(option):
    """Values just outside the option's range (and non-finite ones), each with its reason."""
    values = {keyword: _checks.convert(_options.BY_KEYWORD[keyword], value, {}) for keyword, value in CONTEXT.items()}
    cases = []
    if option.low is not None:
        low = _bound(option.low, values)
        cases.append(("below", _beside(low, -math.inf, option.kind) if option.low_inclusive else low))
    if option.high is not None:
        high = _bound(option.high, values)
        cases.append(("above", _beside(high, math.inf, option.kind) if option.high_inclusive else high))
    if option.kind == "count":
        cases += [("uint32", 2**32), ("fraction", 1.5)]
    elif option.low is not None or option.high is not None:
        cases += [("nan", math.nan), ("inf", math.inf)]
    return cases


OUT_OF_RANGE = [(option, value) for option in OPTIONS for reason, value in _outside(option)]
OUT_OF_RANGE_IDS = [f"{option.keyword}-{reason}" for option in OPTIONS for reason, _ in _outside(option)]


def test_every_option_with_a_range_is_covered():
    ranged = {option.keyword for option in OPTIONS if option.low is not None or option.high is not None}
    assert ranged and ranged <= {option.keyword for option, _ in OUT_OF_RANGE}


def _check_message(error, keyword):
    message = str(error)
    assert isinstance(error, nudge.InvalidArgumentError) and isinstance(error, ValueError)
    assert message.startswith(keyword), message
    assert "options->" not in message and "must be" in message, message


@pytest.mark.parametrize("option, value", OUT_OF_RANGE, ids=OUT_OF_RANGE_IDS)
def test_fit_refuses_a_value_out_of_range_by_its_keyword(no_c_training, option, value):
    net = _network()
    before = net.parameters
    with pytest.raises(nudge.InvalidArgumentError) as info:
        net.fit(X, Y, verbose=False, **{**CONTEXT, option.keyword: value})
    _check_message(info.value, option.keyword)
    np.testing.assert_array_equal(net.parameters, before)


LEARNING_RATE_KEYWORDS = set(inspect.signature(nudge.learning_rates).parameters) & set(KEYWORDS)


@pytest.mark.parametrize("option, value", [(o, v) for o, v in OUT_OF_RANGE if o.keyword in LEARNING_RATE_KEYWORDS],
                         ids=[i for (o, _), i in zip(OUT_OF_RANGE, OUT_OF_RANGE_IDS) if o.keyword in LEARNING_RATE_KEYWORDS])
def test_learning_rates_refuses_a_value_out_of_range_by_its_keyword(no_c_training, option, value):
    arguments = {"epochs": 2, "steps_per_epoch": 3, **CONTEXT, option.keyword: value}
    with pytest.raises(nudge.InvalidArgumentError) as info:
        nudge.learning_rates(**arguments)
    _check_message(info.value, option.keyword)


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.kind == "choice"], ids=lambda o: o.keyword)
def test_fit_refuses_an_unknown_choice_by_its_keyword(no_c_training, option):
    with pytest.raises(nudge.InvalidArgumentError) as info:
        _network().fit(X, Y, verbose=False, **{option.keyword: "no_such_choice"})
    message = str(info.value)
    assert message.startswith(f"{option.keyword} 'no_such_choice' is not one of") and "options->" not in message


def test_a_value_is_checked_as_the_c_float_holds_it(no_c_training):
    """0.99999999 is below 1 as a double but 1.0 as the float32 the C field holds: refused."""
    with pytest.raises(nudge.InvalidArgumentError, match=r"^momentum is 0\.99999999 \(1\.0 as a 32-bit float\)"):
        _network().fit(X, Y, momentum=0.99999999, verbose=False)


# -- (c) every value reaches the C struct -------------------------------------------------------------------------

def _inside(option):
    """A valid value other than fit's default, and what the C field then holds."""
    if option.kind == "choice":
        name = next(n for n in _options.CHOICES[option.choices] if n != option.default)
        return name, _options.CHOICES[option.choices][name]
    if option.kind == "flag":
        return (not option.default), (0 if option.default else 1)
    if option.kind == "seed":
        return 2**63 + 7, 2**63 + 7
    if option.kind == "count":
        value = (option.low or 0) + 3
        return value, value
    if option.kind == "floats":
        return [0.125, 0.25], [0.125, 0.25]
    low = _bound(option.low, CONTEXT) if option.low is not None else 0
    high = _bound(option.high, CONTEXT) if option.high is not None else low + 1
    value = low + (high - low) / 4
    return value, (value if option.kind == "double" else float(np.float32(value)))


@pytest.mark.parametrize("option", OPTIONS, ids=KEYWORDS)
def test_every_option_reaches_the_c_struct(recorded, option):
    value, held = _inside(option)
    _network().fit(X, Y, verbose=False, **CONTEXT)
    _network().fit(X, Y, verbose=False, **{**CONTEXT, option.keyword: value})
    default, changed = recorded
    assert changed[option.field] == held
    # And nothing else changed (but a list's count).
    own = {option.field, option.field + "_count"}
    assert {k: v for k, v in changed.items() if k not in own} == {k: v for k, v in default.items() if k not in own}


def test_fit_keeps_its_hand_written_conversions(recorded):
    net = _network()
    net.fit(X, Y, verbose=False, optimizer="sgd")  # learning_rate None: 0.01 for the others than Adam
    net.fit(X, Y, verbose=False, early_stopping=True)  # a patience of 5
    net.fit(X, Y, verbose=False, dropout=0.5)  # hidden layers only
    net.fit(X, Y, verbose=False, seed=-1)  # wraps as uint64_t
    assert recorded[0]["learning_rate"] == np.float32(0.01)
    assert recorded[1]["patience"] == 5
    assert recorded[2]["dropout"] == [0.0, 0.5]
    assert recorded[3]["seed"] == 2**64 - 1


# -- (d) the ctypes struct against the C compiler -------------------------------------------------------------------

def _compiler():
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def test_struct_layout_matches_the_c_compiler(tmp_path):
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler ($CC, cc, gcc or clang) to compile the nudge_train_options layout probe")
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "nudge.h"', "int main(void) {",
             '    printf("sizeof %zu\\n", sizeof(nudge_train_options));']
    for name in FIELDS:
        lines.append(f'    printf("{name} %zu %zu\\n", offsetof(nudge_train_options, {name}), '
                     f"sizeof(((nudge_train_options *)0)->{name}));")
    lines += ["    return 0;", "}"]
    source, program = tmp_path / "layout.c", tmp_path / "layout"
    source.write_text("\n".join(lines) + "\n")
    subprocess.run([cc, "-std=c99", f"-I{REPO_ROOT / 'include'}", str(source), "-o", str(program)],
                   check=True, capture_output=True, text=True, timeout=120)
    output = subprocess.run([str(program)], check=True, capture_output=True, text=True, timeout=60).stdout
    rows = [line.split() for line in output.splitlines()]
    assert rows[0] == ["sizeof", str(ctypes.sizeof(_lib.nudge_train_options))]
    assert [row[0] for row in rows[1:]] == FIELDS
    for name, offset, size in rows[1:]:
        field = getattr(_lib.nudge_train_options, name)
        assert (field.offset, field.size) == (int(offset), int(size)), name


# -- (e) the scikit-learn estimators ----------------------------------------------------------------------------------

sklearn = pytest.importorskip("nudge.sklearn")


@pytest.mark.parametrize("estimator", ["NudgeClassifier", "NudgeRegressor"])
def test_estimators_take_every_option(estimator):
    cls = getattr(sklearn, estimator)
    params = cls().get_params()
    fit_defaults = {name: p.default for name, p in inspect.signature(nudge.Network.fit).parameters.items()}
    # The options the estimators set themselves, by scikit-learn's names (MLPClassifier's); no more.
    assert set(sklearn.SPELLING) == {"epochs", "seed", "validation_split", "early_stopping"}
    for keyword in KEYWORDS:
        for name in sklearn.SPELLING.get(keyword, (keyword,)):
            assert name in params, f"{estimator}.get_params() lacks {name} (the option {keyword})"
        if keyword not in sklearn.SPELLING:
            assert params[keyword] == fit_defaults[keyword], keyword
            assert f"\n{keyword} : " in "\n" + inspect.cleandoc(cls.__doc__), keyword


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.keyword not in sklearn.SPELLING], ids=lambda o: o.keyword)
def test_estimator_passes_the_option_to_fit(monkeypatch, option):
    from sklearn.base import clone
    value, _ = _inside(option)
    model = clone(sklearn.NudgeClassifier(hidden_layer_sizes=(3,), max_epochs=1, random_state=0).set_params(
        **{**CONTEXT, option.keyword: value}))
    assert model.get_params()[option.keyword] == value
    seen = []
    real_fit = nudge.Network.fit

    def fit(network, X, y, **keywords):
        seen.append(keywords)
        return real_fit(network, X, y, **keywords)
    monkeypatch.setattr(nudge.Network, "fit", fit)
    monkeypatch.setattr(_lib.lib, "nudge_trainer_train_labels", lambda *_: _lib.OK)
    model.fit(X, Y)
    assert seen[0][option.keyword] == value


@pytest.mark.parametrize("option, value", [(o, v) for o, v in OUT_OF_RANGE if o.keyword not in sklearn.SPELLING],
                         ids=[i for (o, _), i in zip(OUT_OF_RANGE, OUT_OF_RANGE_IDS) if o.keyword not in sklearn.SPELLING])
def test_estimator_refuses_a_value_out_of_range_by_its_keyword(no_c_training, option, value):
    model = sklearn.NudgeClassifier(hidden_layer_sizes=(3,), **{**CONTEXT, option.keyword: value})
    with pytest.raises(ValueError) as info:
        model.fit(X, Y)
    _check_message(info.value, option.keyword)
    assert not hasattr(model, "network_")  # refused before building anything
