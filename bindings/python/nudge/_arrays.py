"""numpy in and out: inputs are passed without copying when they are already C-contiguous
float32, converted once otherwise; outputs are allocated here and filled by the library.

Data larger than memory: a path of a .npy file is opened with np.load(path, mmap_mode="r"), and a
memory-mapped array (np.memmap, or a view of one) that is already C-contiguous float32 reaches the
library as it is, so the operating system pages it in from the file as the library reads it. Every
check made here on values works in bounded chunks (never a temporary the size of the data)."""

import ctypes
import mmap
import os

import numpy as np

from ._errors import FormatError, InvalidArgumentError, NotFiniteError, NudgeIOError, ShapeError

_float_p = ctypes.POINTER(ctypes.c_float)
_int32_p = ctypes.POINTER(ctypes.c_int32)

#: The largest conversion (bytes of the converted copy) made of a file-backed array: one of
#: another dtype or memory order. Converting a small file, a slice or a batch is as harmless as
#: converting an in-memory array, so those work as arrays do. Converting a whole large file would
#: copy it into anonymous memory, which defeats mapping it (and may not fit): that is refused
#: before anything is allocated, with the size and how to write the file so that no copy is
#: needed. A limit rather than always refusing, because then chunked processing of a file of any
#: dtype (predicting slice by slice, fit_batches over slices) works; a limit rather than always
#: converting, because a silent multi-gigabyte copy is what a memory map is there to avoid.
FILE_COPY_LIMIT = 256 << 20

#: Elements per step of a check that reads a whole array (finite values, whole numbers).
_CHUNK = 1 << 20


def open_npy(value, name):
    """`value` itself, or the array of a .npy file when it is a path (str or os.PathLike), memory-mapped."""
    if not isinstance(value, (str, bytes, os.PathLike)):
        return value
    path = os.fsdecode(os.fspath(value))
    if not path.endswith(".npy"):
        raise InvalidArgumentError(f"{name} is the path {path!r}; only .npy files are opened as data "
                                   "(CSV and IDX files: nudge.load_csv, nudge.load_idx)")
    try:
        with open(path, "rb") as file:
            magic = file.read(6)
        if magic == b"\x93NUMPY":
            return np.load(path, mmap_mode="r", allow_pickle=False)
    except OSError as error:
        raise NudgeIOError(f"{name}: cannot open {path!r}: {error.strerror or error}") from None
    except ValueError as error:
        raise FormatError(f"{name}: {path!r} is not a .npy array that can be memory-mapped: {error}") from None
    raise FormatError(f"{name}: {path!r} is not a .npy file (it does not begin with numpy's magic bytes)")


def _numeric(value, name):
    """`value` (or the .npy file it names) as a numpy array of numbers (bool, integer or float)."""
    return number_array(open_npy(value, name), name)


def number_array(value, name):
    """`value` as a numpy array of numbers, the check every array argument goes through: str, bytes,
    datetime, object and complex arrays are refused (complex would lose its imaginary part)."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:  # ragged lists, objects numpy cannot read
        raise InvalidArgumentError(f"{name} cannot be read as an array of numbers: {error}") from None
    if array.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"{name} has dtype {array.dtype}; expected numbers (it is converted to float32)")
    return array


def floats(value, name):
    """`value` as a C-contiguous float32 array of any shape, through the checks and the conversion of
    `samples` (numbers only; itself when it already is one). For the arrays that are not samples:
    parameters, layers, normalisation."""
    return as_c_array(number_array(value, name), np.float32, name)


def file_backed(array):
    """Whether `array`'s memory is a file mapping (np.memmap, np.load(mmap_mode=...), or a view of one)."""
    while array is not None:
        if isinstance(array, (np.memmap, mmap.mmap)):
            return True
        array = getattr(array, "base", None)
    return False


def _size_text(count, gib_from=0.01):
    """A byte count in GiB (2 decimals) from `gib_from` GiB up, in MiB or bytes below."""
    if count >= gib_from * (1 << 30):
        return f"{count / (1 << 30):.2f} GiB"
    return f"{count / (1 << 20):g} MiB" if count >= 1 << 20 else f"{count} bytes"


def as_c_array(array, dtype, name):
    """`array` as C-contiguous `dtype`: itself when it already is, else a copy, which is refused for a
    file-backed array larger than FILE_COPY_LIMIT once converted."""
    if array.dtype == dtype and array.flags.c_contiguous:
        return np.ascontiguousarray(array)
    check_file_copy(array, dtype, name)
    return np.ascontiguousarray(array, dtype=dtype)


def check_file_copy(array, dtype, name):
    """Raises InvalidArgumentError when making `array` C-contiguous `dtype` would copy a file-backed
    array of more than FILE_COPY_LIMIT bytes (once converted) into memory."""
    dtype = np.dtype(dtype)
    if array.dtype == dtype and array.flags.c_contiguous:
        return
    size = array.size * dtype.itemsize
    if size > FILE_COPY_LIMIT and file_backed(array):
        why = f"is {array.dtype}" if array.dtype != dtype else "is not in C order (row by row)"
        raise InvalidArgumentError(
            f"{name} is a memory-mapped array of shape {array.shape} that {why}; converting it to C-contiguous "
            f"{dtype} would copy {_size_text(size)} into memory (nudge converts file-backed arrays only up to "
            f"{_size_text(FILE_COPY_LIMIT, gib_from=1)}). Write the file as C-contiguous {dtype} once, in chunks: "
            f"out = np.lib.format.open_memmap(path, mode='w+', dtype=np.{dtype.name}, shape={array.shape}); "
            f"out[i:j] = {name}[i:j] for each chunk; then train from that file, which needs no copy")


def all_finite(array):
    """Whether every value of `array` is finite, read in chunks (no temporary of its size)."""
    flat = array.reshape(-1) if array.flags.c_contiguous else array
    if flat.ndim != 1:
        return all(all_finite(row) for row in flat)
    return all(bool(np.isfinite(flat[i:i + _CHUNK]).all()) for i in range(0, flat.shape[0], _CHUNK))


def samples(value, width, name="X"):
    """A (n, width) C-contiguous float32 array: `value` itself when it already is one. `value` may
    also be the path of a .npy file, mapped rather than read (see FILE_COPY_LIMIT)."""
    array = _numeric(value, name)
    if array.ndim != 2 or array.shape[1] != width:
        hint = " (for one sample, use X.reshape(1, -1))" if array.ndim == 1 and array.shape[0] == width else ""
        raise ShapeError(f"{name} has shape {array.shape}; the network expects (n, {width}){hint}")
    return as_c_array(array, np.float32, name)


def weights(value, n, name="sample_weight"):
    """Sample weights as a C-contiguous float32 (n,) array (`value` itself when it already is one; a
    list, a pandas Series or any array of numbers otherwise, converted once), checked as the library
    checks them, with `name` in the message: each finite (NotFiniteError) and 0 or more, not all 0
    (InvalidArgumentError)."""
    array = _numeric(value, name)
    if array.shape != (n,):
        raise ShapeError(f"{name} has shape {array.shape}; expected ({n},), one weight per sample")
    array = as_c_array(array, np.float32, name)
    nonzero = False
    for start in range(0, n, _CHUNK):
        part = array[start:start + _CHUNK]
        bad = ~np.isfinite(part) | (part < 0)
        if bad.any():
            i = int(np.argmax(bad))
            value = part[i]
            if not np.isfinite(value):
                raise NotFiniteError(f"{name}[{start + i}] is {value}; weights must be finite (float32)")
            raise InvalidArgumentError(f"{name}[{start + i}] is {value}; weights must be 0 or more")
        nonzero = nonzero or bool(part.any())
    if not nonzero:
        raise InvalidArgumentError(f"{name} are all zero ({n} samples); at least one sample needs a weight above zero")
    return array


def c_string(value, name):
    """`value` as UTF-8 bytes for a `const char *`; refuses NUL characters, where C would cut it short.

    Text is a str; other values become their str() (3 becomes "3"), but None and bytes are refused:
    the str() of bytes is their repr ("b'cat,dog'"), and which encoding they are in is the caller's to say."""
    if value is None:
        raise InvalidArgumentError(f"{name} is None; it must be a str")
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError(f"{name} is {type(value).__name__} ({bytes(value)[:40]!r}); it must be a str: "
                                   "decode it first, e.g. value.decode('utf-8')")
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
        return "targets", as_c_array(array, np.float32, name)
    if array.ndim != 1:
        raise ShapeError(f"{name} has shape {array.shape}; expected ({n},) labels or ({n}, {outputs}) targets")
    if outputs == 1:
        # With one output, a label (0 or 1) and a target value mean the same thing.
        return "targets", as_c_array(array.reshape(n, 1), np.float32, name)
    if array.dtype.kind == "f":
        if not _whole(array):
            raise InvalidArgumentError(
                f"{name} is a vector of non-integer values, but the network has {outputs} outputs: pass class "
                f"labels (integers 0 to {outputs - 1}) or a ({n}, {outputs}) array of targets")
    if n and (array.min() < 0 or array.max() >= outputs):
        bad = next(part[(part < 0) | (part >= outputs)][0] for part in _chunks(array)
                   if part.min() < 0 or part.max() >= outputs)
        raise InvalidArgumentError(f"{name} holds the label {bad}; the network has {outputs} classes (0 to {outputs - 1})")
    return "labels", as_c_array(array, np.int32, name)


def _chunks(vector):
    return (vector[i:i + _CHUNK] for i in range(0, vector.shape[0], _CHUNK))


def _whole(vector):
    """Whether every value of a vector is a whole number, read in chunks."""
    return all(bool(np.isfinite(part).all() and (part == np.round(part)).all()) for part in _chunks(vector))
