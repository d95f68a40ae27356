"""Loading data sets through the library, into numpy arrays that share its memory."""

import ctypes

import numpy as np

from . import _lib
from ._arrays import c_path, c_string
from ._checks import whole_number
from ._errors import InvalidArgumentError, check


class _DatasetMemory:
    """Owns a nudge_dataset; arrays that view its memory keep it alive through their `base`."""

    def __init__(self, handle):
        self.handle = handle

    def __del__(self):
        try:
            _lib.lib.nudge_dataset_free(self.handle)
        except (AttributeError, TypeError):  # interpreter shutdown
            pass


class _View:
    """Exposes one buffer of a data set through the numpy array interface, read-only."""

    def __init__(self, owner, address, shape, typestr):
        self.owner = owner
        self.__array_interface__ = {"shape": shape, "typestr": typestr, "data": (address, True), "version": 3}


def _arrays(handle):
    """(X, y) viewing the memory of a freshly loaded nudge_dataset, which they then own."""
    owner = _DatasetMemory(handle)
    count, features = ctypes.c_size_t(), ctypes.c_size_t()
    check(_lib.lib.nudge_dataset_count(handle, ctypes.byref(count)))
    check(_lib.lib.nudge_dataset_feature_count(handle, ctypes.byref(features)))
    x_pointer = ctypes.POINTER(ctypes.c_float)()
    y_pointer = ctypes.POINTER(ctypes.c_int32)()
    check(_lib.lib.nudge_dataset_features(handle, ctypes.byref(x_pointer)))
    check(_lib.lib.nudge_dataset_labels(handle, ctypes.byref(y_pointer)))
    x = np.asarray(_View(owner, ctypes.addressof(x_pointer.contents), (count.value, features.value), "<f4"))
    y = None
    if y_pointer:
        y = np.asarray(_View(owner, ctypes.addressof(y_pointer.contents), (count.value,), "<i4"))
    return x, y


def _max_bytes(max_bytes):
    """The C field for max_bytes: 0 for None (no limit but the machine's memory), else the limit."""
    if max_bytes is None:
        return 0
    return whole_number(max_bytes, "max_bytes", 1, 2**64 - 1)  # a uint64_t; None (0 in C): no limit


def load_idx(images, labels=None, *, max_bytes=None):
    """Loads IDX files (MNIST, Fashion-MNIST; plain or .gz) with the library's reader.

    max_bytes: None, or the most bytes the arrays may take (4 per pixel, 4 per label); larger
        files are refused with NudgeMemoryError (a MemoryError) from their headers, before any data is read.

    Returns (X, y): X is an (n, features) float32 array scaled to [0, 1], y an (n,) int32 array
    of labels (None without a labels file). Both are read-only views of the library's memory,
    without a copy; they keep it alive as long as they exist."""
    options = _lib.nudge_idx_options()
    check(_lib.lib.nudge_idx_options_init(ctypes.byref(options), ctypes.sizeof(options)))
    options.max_bytes = _max_bytes(max_bytes)
    handle = ctypes.POINTER(_lib.nudge_dataset)()
    check(_lib.lib.nudge_dataset_load_idx_with_options(c_path(images, "images"),
                                                       None if labels is None else c_path(labels, "labels"),
                                                       ctypes.byref(options), ctypes.byref(handle)))
    return _arrays(handle)


def load_csv(path, *, header="auto", label_column="auto", delimiter=",", class_count=0, max_bytes=None):
    """Loads a CSV file of numbers (plain or gzip-compressed) with the library's reader.

    With the defaults it reads Kaggle's digit-recognizer train.csv (labels from its "label"
    column, 784 pixel features) and test.csv (no labels), and most numeric CSV.

    header: "auto" (the first row is a header if any of its non-empty cells is not a number),
        True or False. A header of numbers only, such as the "0,1,2,..." pandas writes for unnamed
        columns, needs header=True.
    label_column: "auto" (a header column named "label", in any case, if there is one), None (no
        labels), a 0-based column index, or a column's exact header name.
    delimiter: one ASCII character other than a double quote, CR, LF or NUL.
    class_count: 0 accepts any label from 0 to 2**31 - 1; above 0, labels must be below it.
    max_bytes: None, or the most bytes the arrays may take (4 per feature, 4 per label); a larger
        file raises NudgeMemoryError (a MemoryError) at the row that would pass the limit.

    Returns (X, y): X is an (n, features) float32 array of the values as written (not rescaled), y
    an (n,) int32 array of labels or None. Both are read-only views of the library's memory,
    without a copy, like load_idx's. A malformed file raises FormatError naming its line and
    column ("train.csv:12:5: column "pixel3": "x" is not a number")."""
    options = _lib.nudge_csv_options()
    check(_lib.lib.nudge_csv_options_init(ctypes.byref(options), ctypes.sizeof(options)))
    if isinstance(header, str) and header == "auto":
        options.header = _lib.CSV_HEADERS["auto"]
    elif header is True or header is False:
        options.header = _lib.CSV_HEADERS["present" if header else "none"]
    else:
        raise InvalidArgumentError(f"header is {header!r}; expected \"auto\", True or False")
    if isinstance(label_column, str):
        if label_column != "auto":
            options.label_name = c_string(label_column, "label_column")
    elif label_column is None:
        options.label_column = _lib.CSV_LABEL_NONE
    else:  # a column index, within the int32_t field
        options.label_column = whole_number(label_column, "label_column", 0, 2**31 - 1,
                                            must='it must be "auto", None, a column name or')
    data = delimiter.encode("utf-8") if isinstance(delimiter, str) else delimiter
    if not isinstance(data, bytes) or len(data) != 1 or data[0] >= 0x80:
        raise InvalidArgumentError(f"delimiter is {delimiter!r}; expected one ASCII character")
    options.delimiter = data
    options.class_count = whole_number(class_count, "class_count", 0, 2**32 - 1)  # a uint32_t; 0: any label
    options.max_bytes = _max_bytes(max_bytes)
    handle = ctypes.POINTER(_lib.nudge_dataset)()
    check(_lib.lib.nudge_dataset_load_csv(c_path(path), ctypes.byref(options), ctypes.byref(handle)))
    return _arrays(handle)
