"""The exception hierarchy: every class raised by a real call, with the right bases, status and message."""

import ctypes
import struct
import threading
import zlib

import numpy as np
import pytest

import nudge
from nudge import _errors, _lib


@pytest.mark.parametrize("cls, bases", [
    (nudge.NudgeError, (Exception,)),
    (nudge.InvalidArgumentError, (nudge.NudgeError, ValueError)),
    (nudge.ShapeError, (nudge.NudgeError, ValueError)),
    (nudge.NudgeMemoryError, (nudge.NudgeError, MemoryError)),
    (nudge.NudgeIOError, (nudge.NudgeError, OSError)),
    (nudge.FormatError, (nudge.NudgeError, ValueError)),
    (nudge.VersionError, (nudge.FormatError, ValueError, nudge.NudgeError)),
    (nudge.NotFiniteError, (nudge.NudgeError, ArithmeticError)),
    (nudge.CancelledError, (nudge.NudgeError,)),
    (nudge.NotFoundError, (nudge.NudgeError, KeyError)),
    (nudge.LibraryNotFoundError, (OSError,)),
])
def test_bases(cls, bases):
    for base in bases:
        assert issubclass(cls, base), f"{cls.__name__} should derive from {base.__name__}"


def test_every_status_has_a_class():
    for name in dir(_lib):
        if name.startswith("ERR_") and name != "ERR_INTERNAL":
            assert getattr(_lib, name) in _errors._BY_STATUS, name


def _check(info, cls, status_name, *fragments):
    error = info.value
    assert type(error) is cls, f"expected {cls.__name__}, got {type(error).__name__}: {error}"
    assert error.status_name == status_name
    assert error.status == getattr(_lib, "ERR_" + status_name.upper())
    for fragment in fragments:
        assert fragment in str(error), f"{fragment!r} not in {str(error)!r}"


# -- one real call per class ----------------------------------------------------------------------------

def test_invalid_argument_from_the_library():
    net = nudge.Network([3, 4, 2], seed=0)
    with pytest.raises(ValueError) as info:
        net.fit(np.zeros((4, 3)), [0, 1, 0, 1], validation_split=0.1, verbose=False)
    _check(info, nudge.InvalidArgumentError, "invalid_argument", "nudge_trainer_train_labels:",
           "validation_split 0.1 of 4 samples leaves 0 for validation")
    # An option out of range is reported before the C call, by its Python keyword.
    with pytest.raises(ValueError) as info:
        net.fit(np.zeros((4, 3)), [0, 1, 0, 1], batch_size=0, verbose=False)
    _check(info, nudge.InvalidArgumentError, "invalid_argument", "batch_size is 0")
    with pytest.raises(nudge.InvalidArgumentError) as info:
        net.fit(np.zeros((4, 3)), [0, 1, 0, 1], learning_rate=-1, verbose=False)
    _check(info, nudge.InvalidArgumentError, "invalid_argument", "learning_rate is -1")


def test_invalid_argument_from_python_has_its_status():
    with pytest.raises(nudge.InvalidArgumentError) as info:
        nudge.Network([3, 2], output="swish")
    _check(info, nudge.InvalidArgumentError, "invalid_argument", "swish")


def test_shape_error_from_the_library():
    net = nudge.Network([3, 4, 2], seed=0)
    with pytest.raises(ValueError) as info:
        net.parameters = np.zeros(5)
    _check(info, nudge.ShapeError, "shape", "nudge_network_set_parameters:")


def test_shape_error_from_python_has_its_status():
    net = nudge.Network([3, 4, 2], seed=0)
    with pytest.raises(nudge.ShapeError) as info:
        net.predict(np.zeros((2, 5)))
    _check(info, nudge.ShapeError, "shape", "(2, 5)")


def test_capacity_error_is_a_shape_error():
    # Not reachable through Network (it sizes every buffer); a raw call with a short buffer.
    net = nudge.Network([3, 4, 2], seed=0)
    x = np.zeros((5, 3), dtype=np.float32)
    out = np.zeros(3, dtype=np.float32)
    status = _lib.lib.nudge_predict(net.handle, x.ctypes.data_as(_lib._float_p), 5, out.ctypes.data_as(_lib._float_p), 3)
    with pytest.raises(nudge.ShapeError) as info:
        _errors.check(status)
    assert info.value.status == _lib.ERR_CAPACITY and info.value.status_name == "capacity"
    assert str(info.value).startswith("nudge_predict:") and "10" in str(info.value)


def test_memory_error_for_a_huge_network():
    with pytest.raises(MemoryError) as info:
        nudge.Network([100000, 100000])
    _check(info, nudge.NudgeMemoryError, "out_of_memory", "nudge_network_create:", "parameters")


def test_io_error_loading_a_missing_file(tmp_path):
    path = tmp_path / "missing.nudge"
    with pytest.raises(OSError) as info:
        nudge.Network.load(path)
    _check(info, nudge.NudgeIOError, "io", "nudge_load:", str(path))


def test_io_error_saving_into_a_missing_folder(tmp_path):
    net = nudge.Network([2, 2], seed=0)
    with pytest.raises(OSError) as info:
        net.save(tmp_path / "no" / "such" / "folder" / "net.nudge")
    _check(info, nudge.NudgeIOError, "io", "nudge_save:")


def test_io_error_loading_missing_idx(tmp_path):
    with pytest.raises(nudge.NudgeIOError, match="nudge_dataset_load_idx"):
        nudge.load_idx(tmp_path / "images.idx")


def test_format_error_from_garbage_bytes():
    with pytest.raises(ValueError) as info:
        nudge.Network.from_bytes(b"definitely not a model file, just some bytes")
    _check(info, nudge.FormatError, "format", "nudge_load_from_buffer:")


def test_format_error_from_a_garbage_file(tmp_path):
    path = tmp_path / "garbage.nudge"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(nudge.FormatError) as info:
        nudge.Network.load(path)
    _check(info, nudge.FormatError, "format", "nudge_load:")


def test_format_error_for_truncated_and_corrupted_files():
    data = nudge.Network([3, 4, 2], seed=0).to_bytes()
    with pytest.raises(nudge.FormatError, match="nudge_load_from_buffer"):
        nudge.Network.from_bytes(data[:-10])
    with pytest.raises(nudge.FormatError):
        nudge.Network.from_bytes(data[:11])
    with pytest.raises(nudge.FormatError):
        nudge.Network.from_bytes(b"")
    flipped = bytearray(data)
    flipped[-8] ^= 0x01  # a parameter bit: the CRC no longer matches
    with pytest.raises(nudge.FormatError) as info:
        nudge.Network.from_bytes(bytes(flipped))
    assert "CRC" in str(info.value) or "crc" in str(info.value).lower()


def _with_version(data, version):
    patched = bytearray(data)
    patched[8:12] = struct.pack("<I", version)
    patched[-4:] = struct.pack("<I", zlib.crc32(bytes(patched[:-4])) & 0xFFFFFFFF)
    return bytes(patched)


def test_version_error_from_a_newer_file(tmp_path):
    data = nudge.Network([3, 4, 2], seed=0).to_bytes()
    assert struct.unpack("<I", data[8:12])[0] == 1
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])  # the CRC really is zlib's
    newer = _with_version(data, 4)  # the library reads versions 1 to 3
    with pytest.raises(nudge.FormatError) as info:  # a VersionError is a FormatError too
        nudge.Network.from_bytes(newer)
    _check(info, nudge.VersionError, "version", "nudge_load_from_buffer:")
    path = tmp_path / "newer.nudge"
    path.write_bytes(newer)
    with pytest.raises(nudge.VersionError) as info:
        nudge.Network.load(path)
    _check(info, nudge.VersionError, "version", "nudge_load:")
    # version 0 is not "newer": a plain format error
    with pytest.raises(nudge.FormatError) as info:
        nudge.Network.from_bytes(_with_version(data, 0))
    assert type(info.value) is nudge.FormatError


def test_not_finite_error_for_nan_inputs(blobs):
    X, y = blobs
    X = X.copy()
    X[7, 2] = np.nan
    net = nudge.Network([4, 8, 3], seed=0)
    before = net.parameters
    with pytest.raises(ArithmeticError) as info:
        net.fit(X, y, epochs=1, verbose=False)
    _check(info, nudge.NotFiniteError, "not_finite", "nudge_trainer_train_labels:", "row 7", "nan")
    np.testing.assert_array_equal(net.parameters, before)  # the network is unchanged
    with pytest.raises(nudge.NotFiniteError, match="nudge_evaluate"):
        net.evaluate(X, y)


def test_not_finite_error_for_infinite_targets(rng):
    net = nudge.Network([2, 3, 1], output="identity", seed=0)
    y = np.ones(10)
    y[3] = np.inf
    with pytest.raises(nudge.NotFiniteError, match="nudge_trainer_train"):
        net.fit(rng.normal(size=(10, 2)), y, verbose=False)


def test_not_finite_error_for_a_diverging_fit(rng):
    X = (rng.normal(size=(200, 5)) * 1000).astype(np.float32)
    y = X.sum(axis=1) * 1000
    net = nudge.Network([5, 16, 1], output="identity", seed=1)
    with pytest.raises(nudge.NotFiniteError) as info:
        net.fit(X, y, epochs=20, optimizer="sgd", learning_rate=1e6, verbose=False)
    _check(info, nudge.NotFiniteError, "not_finite", "nudge_trainer_train:")
    assert net.history.stop_reason == "not_finite"
    assert net.history.message == str(info.value)
    assert np.all(np.isfinite(net.parameters))  # the last weights whose loss was finite
    assert np.all(np.isfinite(net.predict(X[:3] / 1000)))


def _raw_train_with_callback(net, callback_result):
    x = np.zeros((10, 3), dtype=np.float32)
    labels = np.zeros(10, dtype=np.int32)
    options = _lib.nudge_train_options()
    _errors.check(_lib.lib.nudge_train_options_init(ctypes.byref(options), ctypes.sizeof(options)))
    options.epochs = 3
    callback = _lib.nudge_progress_fn(lambda report, user: callback_result)
    options.progress = callback
    report = _lib.nudge_train_report()
    report.struct_size = ctypes.sizeof(report)
    status = _lib.lib.nudge_train_labels(net.handle, x.ctypes.data_as(_lib._float_p), labels.ctypes.data_as(_lib._int32_p),
                                         10, ctypes.byref(options), ctypes.byref(report))
    return status, report


def test_cancelled_error_from_a_callback():
    # Network.fit re-raises the callback's own exception instead (see test_training), so
    # CancelledError is reachable only from a raw call whose callback returns non-zero.
    net = nudge.Network([3, 4, 2], seed=0)
    status, report = _raw_train_with_callback(net, 1)
    with pytest.raises(nudge.CancelledError) as info:
        _errors.check(status)
    _check(info, nudge.CancelledError, "cancelled", "nudge_train_labels:", "callback")
    assert _lib.STOP_REASONS[report.stop_reason] == "cancelled" and report.epochs_run == 1
    status, report = _raw_train_with_callback(net, 0)
    assert status == _lib.OK and report.epochs_run == 3


def test_not_found_error_for_a_missing_metadata_key():
    # Network.metadata only reads keys that exist, so the status is reached with the raw getter.
    net = nudge.Network([2, 2], seed=0)
    length = ctypes.c_size_t()
    status = _lib.lib.nudge_network_get_metadata(net.handle, b"no such key", None, 0, ctypes.byref(length))
    with pytest.raises(KeyError) as info:
        _errors.check(status)
    _check(info, nudge.NotFoundError, "not_found", "nudge_network_get_metadata:")
    assert str(info.value) == info.value.args[0]  # no quotes around it, unlike a plain KeyError
    # removing a key that does not exist is not an error
    net.set_metadata("no such key", None)


def test_internal_status_falls_back_to_the_base_class():
    error = _errors.error_for(_lib.ERR_INTERNAL)
    assert type(error) is nudge.NudgeError and error.status_name == "internal"


def test_ok_does_not_raise():
    _errors.check(_lib.OK)


def test_every_class_is_caught_as_nudge_error():
    net = nudge.Network([2, 2], seed=0)
    for call in (lambda: nudge.Network([2, 0]), lambda: net.predict([[1.0]]), lambda: nudge.Network.from_bytes(b"x"),
                 lambda: nudge.Network.load("/nonexistent/x.nudge"), lambda: nudge.Network([100000, 100000])):
        with pytest.raises(nudge.NudgeError):
            call()


def test_error_messages_are_per_thread():
    net = nudge.Network([2, 2], seed=0)
    with pytest.raises(nudge.ShapeError):
        net.parameters = np.zeros(3)
    main_message = _lib.lib.nudge_last_error()
    other = []

    def fail_elsewhere():
        try:
            nudge.Network.from_bytes(b"garbage")
        except nudge.FormatError as error:
            other.append(str(error))

    thread = threading.Thread(target=fail_elsewhere)
    thread.start()
    thread.join()
    assert other and other[0].startswith("nudge_load_from_buffer:")
    assert _lib.lib.nudge_last_error() == main_message  # untouched by the other thread's failure


def test_errors_pickle_with_their_class_and_status():
    import pickle
    with pytest.raises(nudge.ShapeError) as info:
        nudge.Network([2, 2]).predict(np.zeros((1, 3)))
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is nudge.ShapeError and str(copy) == str(info.value) and copy.status_name == "shape"
