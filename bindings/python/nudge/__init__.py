"""Nudge: train multilayer perceptrons from numpy, in libnudge.so.

    import nudge
    net = nudge.Network([784, 128, 10], hidden="relu", output="softmax", seed=0)
    history = net.fit(X, y, epochs=5, validation_split=0.1)
    net.classify(X_test)

Data larger than memory: net.fit("X.npy", "y.npy") maps the files instead of reading them, and
net.fit_batches(nudge.npy_batches("X.npy", "y.npy", 256), epochs=3) trains batch by batch.
"""

from . import _lib
from ._errors import (CancelledError, CollectiveError, FormatError, InvalidArgumentError, NotFiniteError, NotFoundError, NudgeError,
                      NudgeIOError, NudgeMemoryError, ShapeError, VersionError)
from ._lib import LibraryNotFoundError
from .datasets import Dataset, load_csv, load_idx
from .history import History
from .network import Evaluation, Network, RegressionEvaluation
from ._schedule import LearningRates, learning_rates
from ._streaming import NpyBatches, npy_batches

from ._version import __version__

#: The loaded library's path.
library_path = str(_lib.path)


#: The most threads set_num_threads takes (nudge.h: nudge_set_num_threads, "count 1 to 256").
MAX_THREADS = 256


def set_num_threads(count):
    """Sets how many threads the library uses for training and large predictions: a whole number from
    0 to 256 (0: the default, $NUDGE_NUM_THREADS or the number of processors)."""
    from ._checks import whole_number
    from ._errors import check
    check(_lib.lib.nudge_set_num_threads(whole_number(count, "count", 0, MAX_THREADS)))


def get_num_threads():
    """How many threads the library uses."""
    return int(_lib.lib.nudge_get_num_threads())


def library_version():
    """The version of the loaded libnudge.so, e.g. "0.2.0"."""
    return _lib.lib.nudge_version_string().decode()


__all__ = [
    "Network", "History", "Dataset", "load_idx", "load_csv", "learning_rates", "LearningRates", "npy_batches", "NpyBatches", "library_version",
    "library_path", "Evaluation", "RegressionEvaluation",
    "set_num_threads", "get_num_threads",
    "NudgeError", "InvalidArgumentError", "ShapeError", "NudgeMemoryError", "NudgeIOError", "FormatError",
    "VersionError", "NotFiniteError", "CancelledError", "NotFoundError", "CollectiveError", "LibraryNotFoundError",
]
