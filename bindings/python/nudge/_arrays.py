"""numpy in and out: inputs are passed without copying when they are already C-contiguous
float32, converted once otherwise; outputs are allocated here and filled by the library."""

import ctypes
import os

import numpy as np

from ._errors import InvalidArgumentError, ShapeError

_float_p = ctypes.POINTER(ctypes.c_float)
_int32_p = ctypes.POINTER(ctypes.c_int32)


def _numeric(value, name):
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"{name} has dtype {array.dtype}; expected numbers (it is converted to float32)")
    return array


def samples(value, width, name="X"):
    """A (n, width) C-contiguous float32 array: `value` itself when it already is one."""
    array = _numeric(value, name)
    if array.ndim != 2 or array.shape[1] != width:
        hint = " (for one sample, use X.reshape(1, -1))" if array.ndim == 1 and array.shape[0] == width else ""
        raise ShapeError(f"{name} has shape {array.shape}; the network expects (n, {width}){hint}")
    return np.ascontiguousarray(array, dtype=np.float32)


def c_string(value, name):
    """`value` as UTF-8 bytes for a `const char *`; refuses NUL characters, where C would cut it short."""
    try:
        data = str(value).encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidArgumentError(f"{name} {value!r} is not valid UTF-8 text: {error.reason}") from None
    if b"\0" in data:
        raise InvalidArgumentError(f"{name} {value!r} contains a NUL character")
    return data


def c_path(path, name="path"):
    """A file path as bytes for a `const char *` (os.fsencode); refuses NUL characters, as open() does."""
    data = os.fsencode(path)
    if b"\0" in data:
        raise InvalidArgumentError(f"{name} {path!r} contains a NUL character")
    return data


def float_pointer(array):
    return array.ctypes.data_as(_float_p)


def int32_pointer(array):
    return array.ctypes.data_as(_int32_p)


def targets(y, n, outputs, name="y"):
    """Detects what `y` holds and returns ("labels", int32 array) or ("targets", float32 (n, outputs)).

    2-D arrays are target rows (one-hot, probabilities or values). For a single-output network a
    vector is the column of targets. Otherwise a vector holds class labels: integers, or floats
    that are all whole numbers."""
    array = _numeric(y, name)
    if array.shape[:1] != (n,):
        raise ShapeError(f"{name} has {array.shape[0] if array.ndim else 0} rows but X has {n}")
    if array.ndim == 2:
        if array.shape[1] != outputs:
            raise ShapeError(f"{name} has shape {array.shape}; the network has {outputs} outputs, so expected ({n}, {outputs})")
        return "targets", np.ascontiguousarray(array, dtype=np.float32)
    if array.ndim != 1:
        raise ShapeError(f"{name} has shape {array.shape}; expected ({n},) labels or ({n}, {outputs}) targets")
    if outputs == 1:
        # With one output, a label (0 or 1) and a target value mean the same thing.
        return "targets", np.ascontiguousarray(array.reshape(n, 1), dtype=np.float32)
    if array.dtype.kind == "f":
        if not _whole(array):
            raise InvalidArgumentError(
                f"{name} is a vector of non-integer values, but the network has {outputs} outputs: pass class "
                f"labels (integers 0 to {outputs - 1}) or a ({n}, {outputs}) array of targets")
    if n and (array.min() < 0 or array.max() >= outputs):
        bad = array[(array < 0) | (array >= outputs)][0]
        raise InvalidArgumentError(f"{name} holds the label {bad}; the network has {outputs} classes (0 to {outputs - 1})")
    return "labels", np.ascontiguousarray(array, dtype=np.int32)


def _whole(array):
    return bool(np.all(np.isfinite(array)) and np.all(array == np.round(array)))
