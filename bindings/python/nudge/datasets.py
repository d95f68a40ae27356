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


class Dataset(tuple):
    """What load_csv and load_idx return: the pair (X, y), so that `X, y = nudge.load_csv(...)`
    unpacks as it always has, with the per-sample weights beside it as `.weights` (the way
    os.stat_result keeps fields beyond its tuple).

    features (X): an (n, features) float32 array; labels (y): an (n,) int32 array or None;
    weights: an (n,) float32 array of per-sample weights (finite, 0 or more) or None, read from a
    CSV weight column (load_csv(weight_column=...)); IDX files have none. All three are
    read-only views of the library's memory, without a copy; they keep it alive as long as they
    exist."""

    def __new__(cls, features, labels, weights=None):
        data = super().__new__(cls, (features, labels))
        data.weights = weights
        return data

    def __getnewargs__(self):
        return (self[0], self[1], self.weights)

    @property
    def features(self):
        return self[0]

    @property
    def labels(self):
        return self[1]

    def __repr__(self):
        def shape(a):
            return "None" if a is None else f"{a.dtype}{list(a.shape)}"
        return f"Dataset(features={shape(self[0])}, labels={shape(self[1])}, weights={shape(self.weights)})"


def _arrays(handle):
    """The Dataset viewing the memory of a freshly loaded nudge_dataset, which its arrays then own."""
    owner = _DatasetMemory(handle)
    count, features = ctypes.c_size_t(), ctypes.c_size_t()
    check(_lib.lib.nudge_dataset_count(handle, ctypes.byref(count)))
    check(_lib.lib.nudge_dataset_feature_count(handle, ctypes.byref(features)))
    x_pointer = ctypes.POINTER(ctypes.c_float)()
    y_pointer = ctypes.POINTER(ctypes.c_int32)()
    w_pointer = ctypes.POINTER(ctypes.c_float)()
    check(_lib.lib.nudge_dataset_features(handle, ctypes.byref(x_pointer)))
    check(_lib.lib.nudge_dataset_labels(handle, ctypes.byref(y_pointer)))
    check(_lib.lib.nudge_dataset_weights(handle, ctypes.byref(w_pointer)))
    x = np.asarray(_View(owner, ctypes.addressof(x_pointer.contents), (count.value, features.value), "<f4"))
    y = w = None
    if y_pointer:
        y = np.asarray(_View(owner, ctypes.addressof(y_pointer.contents), (count.value,), "<i4"))
    if w_pointer:
        w = np.asarray(_View(owner, ctypes.addressof(w_pointer.contents), (count.value,), "<f4"))
    return Dataset(x, y, w)


def _max_bytes(max_bytes):
    """The C field for max_bytes: 0 for None (no limit but the machine's memory), else the limit."""
    if max_bytes is None:
        return 0
    return whole_number(max_bytes, "max_bytes", 1, 2**64 - 1)  # a uint64_t; None (0 in C): no limit


def load_idx(images, labels=None, *, max_bytes=None):
    """Loads IDX files (MNIST, Fashion-MNIST; plain or .gz) with the library's reader.

    max_bytes: None, or the most bytes the arrays may take (4 per pixel, 4 per label); larger
        files are refused with NudgeMemoryError (a MemoryError) from their headers, before any data is read.

    Returns a Dataset, the pair (X, y): X is an (n, features) float32 array scaled to [0, 1], y
    an (n,) int32 array of labels (None without a labels file); its weights are None. Both are
    read-only views of the library's memory, without a copy; they keep it alive as long as they
    exist."""
    options = _lib.nudge_idx_options()
    check(_lib.lib.nudge_idx_options_init(ctypes.byref(options), ctypes.sizeof(options)))
    options.max_bytes = _max_bytes(max_bytes)
    handle = ctypes.POINTER(_lib.nudge_dataset)()
    check(_lib.lib.nudge_dataset_load_idx_with_options(c_path(images, "images"),
                                                       None if labels is None else c_path(labels, "labels"),
                                                       ctypes.byref(options), ctypes.byref(handle)))
    return _arrays(handle)


def load_csv(path, *, header="auto", label_column="auto", delimiter=",", class_count=0, max_bytes=None,
             ignore_columns=(), weight_column=None):
    """Loads a CSV file of numbers (plain or gzip-compressed) with the library's reader.

    With the defaults it reads Kaggle's digit-recognizer train.csv (labels from its "label"
    column, 784 pixel features) and test.csv (no labels), and most numeric CSV.

    header: "auto" (the first row is a header if any of its non-empty cells is not a number),
        True or False. A header of numbers only, such as the "0,1,2,..." pandas writes for unnamed
        columns, needs header=True.
    label_column: "auto" (a header column named "label", in any case, if there is one and it is
        not ignored or the weight column), None (no labels), a 0-based column index, or a column's
        exact header name.
    delimiter: one ASCII character other than a double quote, CR, LF or NUL.
    class_count: 0 accepts any label from 0 to 2**31 - 1; above 0, labels must be below it.
    max_bytes: None, or the most bytes the arrays may take (4 per feature, label and weight); a
        larger file raises NudgeMemoryError (a MemoryError) at the row that would pass the limit.
    ignore_columns: columns to leave out, such as an id or a name: each a 0-based index or an
        exact header name (one column alone may be given without a list; None is none). Their
        cells are not read as numbers. A column given twice, or also the label or weight column,
        an index past the last column and a name not in the header raise InvalidArgumentError
        naming it.
    weight_column: None, or the column of per-sample weights, a 0-based index or an exact header
        name. Weights are numbers, finite and 0 or more (else FormatError naming the line and
        column); the column is not a feature.

    Returns a Dataset, the pair (X, y): X is an (n, features) float32 array of the values as
    written (not rescaled), y an (n,) int32 array of labels or None; its .weights are an (n,)
    float32 array, or None without a weight column. All are read-only views of the library's
    memory, without a copy, like load_idx's. A malformed file raises FormatError naming its line
    and column ("train.csv:12:5: column "pixel3": "x" is not a number")."""
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
        options.label_column = _column_index(label_column, "label_column", 'it must be "auto", None, a column name or')
    data = delimiter.encode("utf-8") if isinstance(delimiter, str) else delimiter
    if not isinstance(data, bytes) or len(data) != 1 or data[0] >= 0x80:
        raise InvalidArgumentError(f"delimiter is {delimiter!r}; expected one ASCII character")
    options.delimiter = data
    options.class_count = whole_number(class_count, "class_count", 0, 2**32 - 1)  # a uint32_t; 0: any label
    options.max_bytes = _max_bytes(max_bytes)
    arrays = _ignored(options, ignore_columns)  # kept alive through the call
    if isinstance(weight_column, str):
        options.weight_name = c_string(weight_column, "weight_column")
    elif weight_column is not None:
        options.weight_column = _column_index(weight_column, "weight_column", "it must be None, a column name or")
    handle = ctypes.POINTER(_lib.nudge_dataset)()
    check(_lib.lib.nudge_dataset_load_csv(c_path(path), ctypes.byref(options), ctypes.byref(handle)))
    del arrays
    return _arrays(handle)


def _column_index(value, name, must):
    """A 0-based column index for an int32_t field."""
    return whole_number(value, name, 0, 2**31 - 1, must=must)


def _ignored(options, columns):
    """Sets the ignored columns of `options` (indexes and names, from ints and strs) and returns the
    two C arrays it points to."""
    if columns is None:
        columns = ()
    elif isinstance(columns, (str, bytes)) or not hasattr(columns, "__iter__"):
        columns = [columns]
    indexes, names = [], []
    for i, column in enumerate(columns):
        what = f"ignore_columns[{i}]"
        if isinstance(column, str):
            names.append(c_string(column, what))
        else:
            indexes.append(_column_index(column, what, "it must be a column name or"))
    index_array = (ctypes.c_int32 * len(indexes))(*indexes)
    name_array = (ctypes.c_char_p * len(names))(*names)
    if indexes:
        options.ignore_columns = ctypes.cast(index_array, ctypes.POINTER(ctypes.c_int32))
        options.ignore_column_count = len(indexes)
    if names:
        options.ignore_names = ctypes.cast(name_array, ctypes.POINTER(ctypes.c_char_p))
        options.ignore_name_count = len(names)
    return index_array, name_array
