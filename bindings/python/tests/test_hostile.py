"""Hostile and bad input through the Python API, by kind of bad input: which exception type and
which message. The C side of the same kinds is Tests/c/test_hostile.c; docs/RELIABILITY.md maps
the two."""

import struct
import zlib

import numpy as np
import pytest

import nudge

X = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
Y = np.array([0, 1])


@pytest.fixture
def net():
    with nudge.Network([2, 3, 2], hidden="tanh", seed=0) as network:
        yield network


def _raises(cls, *fragments, call):
    with pytest.raises(nudge.NudgeError) as info:
        call()
    assert type(info.value) is cls, f"expected {cls.__name__}, got {type(info.value).__name__}: {info.value}"
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"
    return info.value


# -- NaN and infinities in numpy arrays -------------------------------------------------------------------

BAD_VALUES = [np.nan, np.inf, -np.inf]


def _spoiled(value, array=X, at=(1, 1)):
    out = np.array(array, dtype=np.float32, copy=True)
    out[at] = value
    return out


@pytest.mark.parametrize("value", BAD_VALUES, ids=["nan", "inf", "-inf"])
def test_not_finite_inputs_and_targets(net, value):
    text = {np.nan: "nan", np.inf: "inf", -np.inf: "-inf"}[value] if not np.isnan(value) else "nan"
    before = net.parameters.copy()
    x = _spoiled(value)
    _raises(nudge.NotFiniteError, "inputs row 1, column 1 is " + text, call=lambda: net.fit(x, Y, epochs=1, verbose=False))
    _raises(nudge.NotFiniteError, "targets row 1, column 0 is " + text,
            call=lambda: net.fit(X, _spoiled(value, np.eye(2), (1, 0)), epochs=1, verbose=False))
    _raises(nudge.NotFiniteError, "nudge_evaluate_labels:", "row 1, column 1", call=lambda: net.evaluate(x, Y))
    _raises(nudge.NotFiniteError, "nudge_gradient:", "row 1, column 1", call=lambda: net.gradient(x, Y))
    _raises(nudge.NotFiniteError, "validation inputs row 1, column 1",
            call=lambda: net.fit(X, Y, epochs=1, verbose=False, validation_data=(x, Y)))
    _raises(nudge.NotFiniteError, "nudge_network_fit_normalization:", call=lambda: net.fit_normalization(x))
    _raises(nudge.NotFiniteError, "offset[1] is " + text, call=lambda: net.set_normalization([0.0, value]))
    _raises(nudge.NotFiniteError, "nudge_network_set_parameters:",
            call=lambda: setattr(net, "parameters", np.where(np.arange(net.parameter_count) == 5, value, 0.0)))
    # NotFiniteError is an ArithmeticError, and nothing changed.
    with pytest.raises(ArithmeticError):
        net.evaluate(x, Y)
    np.testing.assert_array_equal(net.parameters, before)
    assert net.normalization is None


def test_not_finite_in_non_contiguous_arrays_names_the_logical_position(net):
    """A strided or Fortran-ordered array is converted first: the message still names the row and
    column the caller sees."""
    wide = np.zeros((2, 4), dtype=np.float32)
    wide[1, 2] = np.nan  # column 1 of the view below
    view = wide[:, ::2]
    assert not view.flags.c_contiguous
    _raises(nudge.NotFiniteError, "inputs row 1, column 1 is nan", call=lambda: net.fit(view, Y, epochs=1, verbose=False))
    fortran = np.asfortranarray(_spoiled(np.inf, at=(0, 1)))
    _raises(nudge.NotFiniteError, "inputs row 0, column 1 is inf", call=lambda: net.evaluate(fortran, Y))


def test_float64_values_beyond_float32_become_infinite_and_are_refused(net):
    huge = np.array([[1e300, 0.0], [0.0, 0.0]])
    with pytest.warns(RuntimeWarning):
        _raises(nudge.NotFiniteError, "inputs row 0, column 0 is inf", call=lambda: net.fit(huge, Y, epochs=1, verbose=False))


def test_predict_passes_not_finite_values_through(net):
    """Documented: prediction does not check its inputs, for speed."""
    out = net.predict(_spoiled(np.nan))
    assert np.isfinite(out[0]).all() and np.isnan(out[1]).all()


# -- absurd shapes and architectures ---------------------------------------------------------------------

@pytest.mark.parametrize("sizes, cls, fragment", [
    ([], nudge.InvalidArgumentError, "at least 2 entries"),
    ([3], nudge.InvalidArgumentError, "at least 2 entries"),
    ([2, 0, 2], nudge.InvalidArgumentError, "layer_sizes[1] is 0; it must be a whole number from 1 to 16777216"),
    ([-1, 3, 2], nudge.InvalidArgumentError, "layer_sizes[0] is -1; it must be a whole number from 1 to 16777216"),
    ([1_000_000, 1_000_000, 10], nudge.NudgeMemoryError, "more than 2147483648 parameters"),
    ([2**24 + 1, 2], nudge.InvalidArgumentError, "layer_sizes[0] is 16777217"),
    ([2**63, 3, 2], nudge.InvalidArgumentError, "layer_sizes[0] is 9223372036854775808"),
    # 2**64 would wrap around to 0 in a size_t; 2**64 + 3 to 3, a valid width.
    ([2**64, 3, 2], nudge.InvalidArgumentError, "layer_sizes[0] is 18446744073709551616"),
    ([2, 2**64 + 3, 2], nudge.InvalidArgumentError, "layer_sizes[1] is 18446744073709551619"),
    ([2.5, 3], nudge.InvalidArgumentError, "layer_sizes[0] is 2.5; it must be a whole number from 1 to 16777216"),
    ([2, float("inf")], nudge.InvalidArgumentError, "layer_sizes[1] is inf"),
    (["a", 3], nudge.InvalidArgumentError, "layer_sizes[0] is 'a'"),
    ([True, 3], nudge.InvalidArgumentError, "layer_sizes[0] is True"),
    ([1] * 1026, nudge.InvalidArgumentError, "layer_count is 1026; it must be 2 to 1024"),
])
def test_absurd_architectures(sizes, cls, fragment):
    _raises(cls, fragment, call=lambda: nudge.Network(sizes))


def test_whole_float_and_numpy_widths_are_accepted():
    net = nudge.Network([np.int64(2), 3.0, np.uint8(2)])
    assert list(net.layer_sizes) == [2, 3, 2]


def test_widest_layer_predicts_one_sample():
    """2^24 hidden units (50 million parameters) is allowed: one prediction needs 128 MiB of scratch, not 32 GiB."""
    with nudge.Network([1, 2**24, 1], hidden="relu", output="identity", seed=1) as wide:
        out = wide.predict(np.ones((1, 1), dtype=np.float32))
        assert out.shape == (1, 1) and np.isfinite(out).all()
        assert wide.classify(np.ones((3, 1))).shape == (3,)


@pytest.mark.parametrize("shape", [(), (2,), (1, 2, 1), (2, 3), (0, 3)])
def test_wrong_ndim_and_width(net, shape):
    _raises(nudge.ShapeError, f"X has shape {shape}", call=lambda: net.predict(np.zeros(shape, dtype=np.float32)))


@pytest.mark.parametrize("array", [
    np.zeros((2, 2), dtype=np.complex64),
    np.array([[1, "a"], [2, 3]], dtype=object),
    np.array([["1", "2"]]),
    np.zeros((1, 2), dtype="datetime64[s]"),
], ids=["complex", "object", "str", "datetime"])
def test_wrong_dtypes(net, array):
    _raises(nudge.InvalidArgumentError, "X has dtype", "expected numbers", call=lambda: net.predict(array))


WRONG_DTYPES = {
    "complex": lambda n: np.ones(n, dtype=np.complex128),
    "object": lambda n: np.array([1.0] * (n - 1) + [None], dtype=object),
    "str": lambda n: np.array(["1"] * n),
    "datetime": lambda n: np.zeros(n, dtype="datetime64[s]"),
}

#: Every array argument other than samples and targets: (name in the message, the call with `make(n)`).
ARRAY_SETTERS = {
    "parameters": lambda net, make: setattr(net, "parameters", make(net.parameter_count)),
    "layer 1 weights": lambda net, make: net.set_layers([(make(6).reshape(3, 2), np.zeros(3)), net.layers()[1]]),
    "layer 2 biases": lambda net, make: net.set_layers([net.layers()[0], (np.zeros((2, 3)), make(2))]),
    "offset": lambda net, make: net.set_normalization(make(2)),
    "scale": lambda net, make: net.set_normalization(0.0, make(2)),
}


@pytest.mark.parametrize("dtype", WRONG_DTYPES)
@pytest.mark.parametrize("setter", ARRAY_SETTERS)
def test_setters_refuse_the_dtypes_predict_refuses(net, setter, dtype):
    """parameters, set_layers and set_normalization convert as predict does: numbers only (complex
    would lose its imaginary part, str and datetime would be parsed or reinterpreted)."""
    before = net.parameters
    _raises(nudge.InvalidArgumentError, f"{setter} has dtype", "expected numbers",
            call=lambda: ARRAY_SETTERS[setter](net, WRONG_DTYPES[dtype]))
    np.testing.assert_array_equal(net.parameters, before)
    assert net.normalization is None


def test_setters_refuse_arrays_numpy_cannot_read(net):
    _raises(nudge.InvalidArgumentError, "offset cannot be read as an array of numbers",
            call=lambda: net.set_normalization([[1.0], [1.0, 2.0]]))


def test_setters_take_numbers_of_any_dtype(net):
    net.parameters = np.arange(net.parameter_count)  # int64
    assert net.parameters.dtype == np.float32 and net.parameters[5] == 5
    net.set_normalization(np.array([1, 2], dtype=np.int8), np.array([True, True]))
    np.testing.assert_array_equal(net.normalization[0], [1, 2])


def test_empty_batches(net):
    assert net.predict(np.zeros((0, 2))).shape == (0, 2)
    _raises(nudge.InvalidArgumentError, "sample_count is 0",
            call=lambda: net.fit(np.zeros((0, 2)), np.zeros(0, dtype=int), epochs=1, verbose=False))


# -- labels out of range -------------------------------------------------------------------------------------

@pytest.mark.parametrize("label", [-1, 2, 2**31, 2**32, -2**31 - 1])
def test_labels_out_of_range_are_not_wrapped_to_int32(net, label):
    y = np.array([0, label], dtype=np.int64)
    _raises(nudge.InvalidArgumentError, f"holds the label {label}; the network has 2 classes",
            call=lambda: net.fit(X, y, epochs=1, verbose=False))
    _raises(nudge.InvalidArgumentError, f"holds the label {label}", call=lambda: net.evaluate(X, y))


def test_labels_of_unsigned_types(net):
    y = np.array([0, 2**64 - 1], dtype=np.uint64)
    _raises(nudge.InvalidArgumentError, "holds the label 18446744073709551615", call=lambda: net.evaluate(X, y))


# -- options out of range and unknown names -----------------------------------------------------------------

@pytest.mark.parametrize("kwargs, fragment", [
    ({"learning_rate": -0.1}, "learning_rate is -0.1"),
    ({"learning_rate": float("nan")}, "learning_rate is nan"),
    ({"dropout": 1.0}, "dropout[1] is 1.0"),
    ({"dropout": [0.0, -0.5]}, "dropout[1] is -0.5"),
    ({"dropout": [0.1, 0.1, 0.1]}, "dropout has 3 rates"),
    ({"batch_size": 0}, "batch_size is 0"),
    ({"batch_size": -1}, "batch_size is -1"),
    ({"batch_size": 2**40}, "batch_size is 1099511627776"),
    ({"epochs": -1}, "epochs is -1"),
    ({"validation_split": 1.0}, "validation_split is 1.0"),
    ({"validation_split": 0.9}, "leaves 2 for validation and 0 for training"),
    ({"momentum": 1.0, "optimizer": "momentum"}, "momentum is 1.0"),
    ({"step_factor": 0.0, "schedule": "step"}, "step_factor is 0.0"),
    ({"min_learning_rate": 1.0, "schedule": "cosine"}, "min_learning_rate is 1.0"),
    ({"warmup_epochs": float("inf")}, "warmup_epochs is inf"),
    ({"clip_norm": -1.0}, "clip_norm is -1.0"),
    ({"optimizer": "adamw"}, "optimizer 'adamw' is not one of adam, momentum, nesterov, sgd"),
    ({"loss": "hinge"}, "loss 'hinge' is not one of"),
    ({"schedule": "linear"}, "schedule 'linear' is not one of constant, cosine, step"),
    ({"normalize": "minmax"}, "normalize 'minmax' is not one of"),
])
def test_options_out_of_range(net, kwargs, fragment):
    before = net.parameters.copy()
    settings = {"epochs": 1, **kwargs}
    error = _raises(nudge.InvalidArgumentError, fragment, call=lambda: net.fit(X, Y, verbose=False, **settings))
    assert "options->" not in str(error)  # named as the Python caller typed it
    np.testing.assert_array_equal(net.parameters, before)


def test_unknown_names_elsewhere(net):
    _raises(nudge.InvalidArgumentError, "activation 'swish' is not one of", call=lambda: nudge.Network([2, 3, 2], hidden="swish"))
    _raises(nudge.InvalidArgumentError, "activation 'softmax2'", call=lambda: nudge.Network([2, 2], output="softmax2"))
    _raises(nudge.InvalidArgumentError, "softmax", call=lambda: nudge.Network([2, 3, 2], hidden="softmax"))
    _raises(nudge.InvalidArgumentError, "loss 'l1'", call=lambda: net.evaluate(X, Y, loss="l1"))
    _raises(nudge.InvalidArgumentError, "kind 'minmax'", call=lambda: net.fit_normalization(X, kind="minmax"))
    _raises(nudge.InvalidArgumentError, "steps_per_epoch is 0", call=lambda: nudge.learning_rates(1, 0))


# -- strings: NUL characters, lone surrogates, empty ---------------------------------------------------------

@pytest.mark.parametrize("key, value, fragment", [
    ("a\0b", "v", "metadata key 'a\\x00b' contains a NUL character"),
    ("k", "v\0", "contains a NUL character"),
    ("\ud800", "v", "is not valid UTF-8 text"),
    ("k", "\udfff", "is not valid UTF-8 text"),
    ("", "v", "nudge_network_set_metadata: metadata key is empty"),
    ("k" * (2**20 + 1), "v", "longer than 1048576 bytes"),
])
def test_bad_metadata(net, key, value, fragment):
    _raises(nudge.InvalidArgumentError, fragment, call=lambda: net.set_metadata(key, value))
    assert net.metadata == {}


@pytest.mark.parametrize("data", [b"cat,dog", bytearray(b"cat,dog"), memoryview(b"cat,dog")],
                         ids=["bytes", "bytearray", "memoryview"])
def test_metadata_refuses_bytes(net, data):
    """Metadata is text: bytes are refused (their str() would store "b'cat,dog'"), saying to decode them."""
    kind = type(data).__name__
    _raises(nudge.InvalidArgumentError, f"metadata value is {kind} (b'cat,dog'); it must be a str", "decode",
            call=lambda: net.set_metadata("classes", data))
    _raises(nudge.InvalidArgumentError, f"metadata key is {kind}", call=lambda: net.set_metadata(data, "v"))
    assert net.metadata == {}
    _raises(nudge.InvalidArgumentError, "metadata key is None; it must be a str", call=lambda: net.set_metadata(None, "v"))
    net.set_metadata("classes", bytes(data).decode("utf-8"))
    assert net.metadata == {"classes": "cat,dog"}


def test_from_bytes_takes_bytes_only():
    # bytes(10**12) would allocate a terabyte of zeros before the reader saw them.
    _raises(nudge.InvalidArgumentError, "data is int; it must be bytes", call=lambda: nudge.Network.from_bytes(10**12))


def test_bad_paths(net, tmp_path):
    _raises(nudge.InvalidArgumentError, "contains a NUL character", call=lambda: net.save(str(tmp_path / "a\0b")))
    _raises(nudge.InvalidArgumentError, "contains a NUL character", call=lambda: nudge.Network.load("a\0b"))
    _raises(nudge.NudgeIOError, "is not a regular file", call=lambda: nudge.Network.load(tmp_path))
    _raises(nudge.NudgeIOError, "No such file", call=lambda: nudge.Network.load(tmp_path / "missing.nudge"))


# -- model bytes that lie ----------------------------------------------------------------------------------

def _with_crc(data):
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def test_model_bytes_that_lie(net):
    net.set_metadata("classes", "a,b")
    good = net.to_bytes()
    meta = 40 + 3 * 4 + 2 * 4  # the first metadata key's length
    assert struct.unpack_from("<I", good, meta)[0] == 7

    future = bytearray(good)
    struct.pack_into("<I", future, 8, 4)
    _raises(nudge.VersionError, "format version 4 is newer", call=lambda: nudge.Network.from_bytes(_with_crc(bytes(future))))

    wider = bytearray(good)
    struct.pack_into("<I", wider, 44, 4)  # hidden width 3 -> 4, CRC valid
    _raises(nudge.FormatError, "parameters", call=lambda: nudge.Network.from_bytes(_with_crc(bytes(wider))))

    for cut in (0, 11, 44, len(good) // 2, len(good) - 1):
        _raises(nudge.FormatError, "nudge_load_from_buffer:", call=lambda: nudge.Network.from_bytes(good[:cut]))

    nul = bytearray(good)
    nul[meta + 4 + 1] = 0
    _raises(nudge.FormatError, "metadata key 0 contains a NUL byte", call=lambda: nudge.Network.from_bytes(_with_crc(bytes(nul))))
    nul = bytearray(good)
    nul[meta + 4 + 7 + 4 + 1] = 0  # a value keeps its NUL: it comes back with its length
    assert "\0" in next(iter(nudge.Network.from_bytes(_with_crc(bytes(nul))).metadata.values()))
    for at, what in ((meta + 4 + 1, "metadata key 0"), (meta + 4 + 7 + 4 + 1, "metadata value 0")):
        bad = bytearray(good)
        bad[at] = 0xFF
        _raises(nudge.FormatError, what + " is not valid UTF-8", call=lambda: nudge.Network.from_bytes(_with_crc(bytes(bad))))

    # FormatError and VersionError are ValueErrors; the good bytes still load.
    with pytest.raises(ValueError):
        nudge.Network.from_bytes(b"")
    assert nudge.Network.from_bytes(good).metadata == {"classes": "a,b"}


# -- closed networks --------------------------------------------------------------------------------------

def test_closed_network(net):
    net.close()
    _raises(nudge.InvalidArgumentError, "this Network is closed", call=lambda: net.predict(X))
    _raises(nudge.InvalidArgumentError, "this Network is closed", call=lambda: net.fit(X, Y, epochs=1, verbose=False))
    net.close()  # twice is fine


# -- integer arguments: whole numbers within their C type, never wrapped -------------------------------------

def _fit(keyword, **options):
    """A fit call with `keyword` set to the value under test."""
    def call(value):
        nudge.Network([2, 3, 2], seed=0).fit(X, Y, verbose=False, **{"epochs": 1, **options, keyword: value})
    return call


#: name -> (the call with the value, the range the message gives).
INTEGER_ARGUMENTS = {
    "count": (nudge.set_num_threads, (0, 256)),
    "seed": (lambda value: nudge.Network([2, 2], seed=value), (-2**63, 2**64 - 1)),
    "fit seed": (_fit("seed"), (-2**63, 2**64 - 1)),
    "epochs": (_fit("epochs"), (0, 2**32 - 1)),
    "batch_size": (_fit("batch_size"), (1, 1 << 20)),
    "early_stopping": (_fit("early_stopping"), (0, 2**32 - 1)),
    "checkpoint_every": (_fit("checkpoint_every", checkpoint="c.nudge"), (0, 2**64 - 1)),
    "layer_sizes[1]": (lambda value: nudge.Network([2, value, 2]), (1, 2**24)),
    "steps_per_epoch": (lambda value: nudge.learning_rates(2, value), (1, 2**64 - 1)),
    "fit_batches epochs": (lambda value: nudge.Network([2, 2]).fit_batches([(X, Y)], epochs=value, verbose=False),
                           (0, 2**32 - 1)),
    "class_count": (lambda value: nudge.load_csv("unused.csv", class_count=value), (0, 2**32 - 1)),
    "label_column": (lambda value: nudge.load_csv("unused.csv", label_column=value), (0, 2**31 - 1)),
}


NOT_INTEGERS = {  # id -> (value, as the message shows it)
    "2**64+3": (2**64 + 3, "18446744073709551619"),  # 3 once wrapped into 64 bits
    "2.9": (2.9, "2.9"),
    "nan": (float("nan"), "nan"),
    "None": (None, "None"),
    "str": ("3", "'3'"),
    "True": (True, "True"),
    "below int64": (-2**63 - 1, "-9223372036854775809"),
}
#: The values of NOT_INTEGERS an argument documents another meaning for.
OTHER_MEANINGS = {"early_stopping": {"None", "True"}, "label_column": {"None", "str"}}


@pytest.mark.parametrize("argument, value, shown", [
    pytest.param(argument, value, shown, id=f"{argument}-{key}")
    for argument in INTEGER_ARGUMENTS for key, (value, shown) in NOT_INTEGERS.items()
    if key not in OTHER_MEANINGS.get(argument, ())])
def test_integer_arguments_are_whole_numbers_in_range(argument, value, shown, tmp_path, monkeypatch):
    """Every integer argument goes through one check, with one message: "NAME is VALUE; it must be a
    whole number from A to B" (A to B: the C type's range, or the documented one when narrower)."""
    monkeypatch.chdir(tmp_path)
    call, (low, high) = INTEGER_ARGUMENTS[argument]
    name = argument.split()[-1]
    threads = nudge.get_num_threads()
    error = _raises(nudge.InvalidArgumentError, f"{name} is {shown};", call=lambda: call(value))
    assert str(error).endswith(f"a whole number from {low} to {high}") or "(the same seed" in str(error), str(error)
    assert nudge.get_num_threads() == threads
    assert not (tmp_path / "c.nudge").exists()


def test_set_num_threads_never_wraps():
    threads = nudge.get_num_threads()
    _raises(nudge.InvalidArgumentError, "count is 18446744073709551619; it must be a whole number from 0 to 256",
            call=lambda: nudge.set_num_threads(2**64 + 3))
    assert nudge.get_num_threads() == threads  # not 3
    nudge.set_num_threads(np.int64(0))  # numpy integers and whole floats are whole numbers
    nudge.set_num_threads(0.0)


def test_seeds_are_whole_numbers():
    _raises(nudge.InvalidArgumentError, "seed is 2.9; it must be a whole number", call=lambda: nudge.Network([2, 2], seed=2.9))
    error = _raises(nudge.InvalidArgumentError, "seed is None;", call=lambda: nudge.Network([2, 2], seed=None))
    assert "secrets.randbits(64)" in str(error)  # how to ask for a random one
    _raises(nudge.InvalidArgumentError, "seed is None;",
            call=lambda: nudge.Network([2, 2]).fit(X, Y, seed=None, epochs=1, verbose=False))
    # A whole float is that number; a negative seed is its 64-bit pattern (-1 is 2**64 - 1).
    np.testing.assert_array_equal(nudge.Network([2, 2], seed=3.0).parameters, nudge.Network([2, 2], seed=3).parameters)
    np.testing.assert_array_equal(nudge.Network([2, 2], seed=-1).parameters,
                                  nudge.Network([2, 2], seed=2**64 - 1).parameters)


# -- targets a cross-entropy cannot take, and a softmax of one unit ----------------------------------------

@pytest.mark.parametrize("label", [5, -3])
def test_labels_as_targets_of_one_sigmoid_output(label):
    # With one output a label vector is the column of targets, so 5 or -3 would train toward outputs a
    # sigmoid can never reach (with a negative "loss"): refused everywhere, naming the value and the range.
    net = nudge.Network([2, 3, 1], hidden="tanh", output="sigmoid", seed=1)
    y = np.array([1, label])
    before = net.parameters.copy()
    expect = f"targets row 1, column 0 is {float(label)}; cross-entropy needs targets from 0 to 1"
    _raises(nudge.InvalidArgumentError, expect, call=lambda: net.fit(X, y, epochs=1, verbose=False))
    _raises(nudge.InvalidArgumentError, "nudge_evaluate:", expect, call=lambda: net.evaluate(X, y))
    _raises(nudge.InvalidArgumentError, "nudge_gradient:", expect, call=lambda: net.gradient(X, y))
    _raises(nudge.InvalidArgumentError, "validation targets row 1, column 0",
            call=lambda: net.fit(X, [1, 0], epochs=1, verbose=False, validation_data=(X, y)))
    _raises(nudge.InvalidArgumentError, expect, call=lambda: net.fit_batches([(X, y)], verbose=False))
    assert np.array_equal(net.parameters, before)
    # Mean squared error takes any target; InvalidArgumentError is a ValueError.
    assert np.isfinite(net.evaluate(X, y, loss="mse").loss)
    with pytest.raises(ValueError):
        net.fit(X, y, epochs=1, verbose=False)


def test_softmax_output_of_one_unit():
    expect = "a softmax output needs at least 2 units (one unit always predicts class 1); use sigmoid for one output"
    _raises(nudge.InvalidArgumentError, "nudge_network_create:", "layer_sizes[2] is 1", expect,
            call=lambda: nudge.Network([3, 4, 1], output="softmax"))
    _raises(nudge.InvalidArgumentError, expect, call=lambda: nudge.Network([3, 1], output="softmax"))
    # A file that holds one: a sigmoid network's bytes with the output's activation code made softmax.
    good = bytearray(nudge.Network([3, 4, 1], output="sigmoid").to_bytes())
    assert struct.unpack_from("<I", good, 40 + 3 * 4 + 4)[0] == 1
    struct.pack_into("<I", good, 40 + 3 * 4 + 4, 5)
    _raises(nudge.FormatError, expect, call=lambda: nudge.Network.from_bytes(_with_crc(bytes(good))))


# -- validation data of 0 samples -------------------------------------------------------------------------

def test_empty_validation_data(net):
    before = net.parameters.copy()
    expect = "validation_data has no samples (X_val has 0 rows)"
    _raises(nudge.InvalidArgumentError, expect, call=lambda: net.fit(X, Y, epochs=1, verbose=False, validation_data=(X[:0], Y[:0])))
    _raises(nudge.InvalidArgumentError, expect,
            call=lambda: net.fit_batches([(X, Y)], verbose=False, validation_data=(X[:0], Y[:0])))
    assert np.array_equal(net.parameters, before)


# -- training again from a training callback --------------------------------------------------------------

class _Reentering:
    """A progress display whose epoch callback trains the same network again."""

    def __init__(self, net, calls):
        self.net, self.calls = net, calls

    def epoch(self, report):
        self.calls.append("epoch")
        self.net.fit(X, Y, epochs=1, verbose=False)

    def batch(self, *args):
        pass

    def close(self):
        pass


def test_fit_from_its_own_callback(net, monkeypatch):
    # Was a SIGILL that killed the interpreter; now the inner fit raises, and the outer fit raises that.
    calls = []
    real = nudge.network.make_progress
    monkeypatch.setattr(nudge.network, "make_progress",
                        lambda verbose, epochs: _Reentering(net, calls) if verbose else real(verbose, epochs))
    _raises(nudge.InvalidArgumentError, "the trainer is already training",
            call=lambda: net.fit(X, Y, epochs=3, batch_size=1, verbose=True))
    assert calls == ["epoch"]
    monkeypatch.undo()
    assert net.fit(X, Y, epochs=1, verbose=False).stop_reason == "completed"


# -- evaluation of a regression network -------------------------------------------------------------------

def test_evaluate_regression_network(rng):
    net = nudge.Network([3, 8, 2], hidden="tanh", output="identity", seed=2)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    t = np.stack([x[:, 0] - 2 * x[:, 1], 3 + x[:, 2]], axis=1).astype(np.float32)
    result = net.evaluate(x, t)
    assert isinstance(result, nudge.RegressionEvaluation) and result._fields == ("loss", "mse", "mae", "r2")
    t64 = t.astype(np.float64)
    error = net.predict(x).astype(np.float64) - t64
    r2 = np.mean(1 - (error ** 2).sum(axis=0) / ((t64 - t64.mean(axis=0)) ** 2).sum(axis=0))
    assert result.mse == pytest.approx((error ** 2).mean(), rel=1e-9)
    assert result.mae == pytest.approx(np.abs(error).mean(), rel=1e-9)
    assert result.r2 == pytest.approx(r2, rel=1e-9, abs=1e-9)
    assert result.loss == pytest.approx(result.mse * 2, rel=1e-6)  # the mse loss sums over the outputs
    loss, mse, mae, r2 = result  # a tuple too
    # Training gets better at it; a perfect constant fit has R^2 1, a missed constant 0 (never NaN).
    net.fit(x, t, epochs=30, verbose=False, seed=0)
    assert net.evaluate(x, t).r2 > r2
    net.parameters = np.zeros(net.parameter_count)
    constant = net.evaluate(x, np.tile(np.float32([0, 3]), (300, 1)))
    assert (constant.mse, constant.mae, constant.r2) == (4.5, 1.5, 0.5)


def test_evaluate_classifier_is_a_named_pair(net):
    result = net.evaluate(X, Y)
    assert isinstance(result, nudge.Evaluation) and result._fields == ("loss", "accuracy")
    loss, accuracy = result
    assert (loss, accuracy) == (result.loss, result.accuracy) and 0 <= accuracy <= 1
    assert net.evaluate(X, np.eye(2)[Y]) == result


# -- range messages name both ends ------------------------------------------------------------------------

@pytest.mark.parametrize("value", [2**32, -1])
def test_count_messages_name_both_ends(net, value):
    # Python checks these before the library does, with the one message of every integer argument.
    for keyword in ("epochs", "early_stopping", "step_epochs"):
        low = 1 if keyword == "step_epochs" else 0
        _raises(nudge.InvalidArgumentError, f"{keyword} is {value}; it must be a whole number from {low} to 4294967295",
                call=lambda: net.fit(X, Y, verbose=False, **{keyword: value}))
    _raises(nudge.InvalidArgumentError, f"epochs is {value}; it must be a whole number from 0 to 4294967295",
            call=lambda: nudge.learning_rates(value, 1))
    if value < 0:
        _raises(nudge.InvalidArgumentError, f"steps_per_epoch is {value}; it must be a whole number from 1 to {2**64 - 1}",
                call=lambda: nudge.learning_rates(1, value))