"""Loading data sets through the library, into numpy arrays that share its memory."""

import ctypes

import numpy as np

from . import _lib
from ._arrays import c_path
from ._errors import check


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


def load_idx(images, labels=None):
    """Loads IDX files (MNIST, Fashion-MNIST; plain or .gz) with the library's reader.

    Returns (X, y): X is an (n, features) float32 array scaled to [0, 1], y an (n,) int32 array
    of labels (None without a labels file). Both are read-only views of the library's memory,
    without a copy; they keep it alive as long as they exist."""
    handle = ctypes.POINTER(_lib.nudge_dataset)()
    check(_lib.lib.nudge_dataset_load_idx(c_path(images, "images"), None if labels is None else c_path(labels, "labels"),
                                          ctypes.byref(handle)))
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
