"""nudge.learning_rates: the learning rate of every step of a fit call, as the library computes it
(nudge_learning_rate_at), one step at a time when it is read. A schedule of 10**9 steps costs
nothing until its steps are read; reading one step is one C call."""

import collections.abc
import ctypes
import operator
import sys

import numpy as np

from . import _checks, _lib, _options, _settings
from ._errors import InvalidArgumentError, check

#: The most steps one read computes into an array (a slice, np.asarray): about ten seconds of C calls.
#: A longer schedule is read by slices, or with a stride (rates[::1000]).
MAX_STEPS = 10_000_000

_DEFAULTS = _checks.defaults()


def learning_rates(epochs, steps_per_epoch, learning_rate=_DEFAULTS["learning_rate"], schedule=_DEFAULTS["schedule"],
                   step_epochs=_DEFAULTS["step_epochs"], step_factor=_DEFAULTS["step_factor"],
                   warmup_epochs=_DEFAULTS["warmup_epochs"], min_learning_rate=_DEFAULTS["min_learning_rate"]):
    """The learning rate of every step of a `fit` call with these settings (as the library computes
    it), for plotting or checking a schedule: a LearningRates sequence of epochs * steps_per_epoch
    float32 rates, computed when read. The settings are checked as fit checks them, at once.

    >>> rates = nudge.learning_rates(20, 235, 0.002, "cosine")
    >>> rates[0], rates[-1], len(rates)           # one step each
    >>> plt.plot(np.asarray(rates))               # every step (up to MAX_STEPS at a time)
    >>> nudge.learning_rates(10**6, 10**3)[::10**4]   # a long schedule, every 10000th step
    """
    options = _settings.new_options()
    rate = _checks.convert(_options.BY_KEYWORD["learning_rate"], learning_rate, {})
    options.learning_rate = rate
    _checks.set_fields(options, {"epochs": epochs, "learning_rate": rate, "schedule": schedule,
                                  "step_epochs": step_epochs, "step_factor": step_factor,
                                  "warmup_epochs": warmup_epochs, "min_learning_rate": min_learning_rate})
    per_epoch = _checks.whole_number(steps_per_epoch, "steps_per_epoch", 1, 2**64 - 1)  # a size_t
    count = options.epochs * per_epoch
    if count > sys.maxsize:
        raise InvalidArgumentError(f"epochs * steps_per_epoch is {count} steps; a schedule has at most {sys.maxsize}")
    rates = LearningRates(options, per_epoch, count)
    rates._rate(0)  # bad settings are reported now, also when there are no steps
    return rates


class LearningRates(collections.abc.Sequence):
    """The learning rates of a schedule (nudge.learning_rates), computed by the library when read.

    len(rates) is the number of steps; rates[i] is the rate of step i (a numpy float32; negative i
    counts from the end); rates[i:j:k] is a float32 array of those steps; np.asarray(rates) is every
    rate; iterating yields them one by one; other indices (rates[:, None], a mask) index the array of
    every rate. An array holds at most MAX_STEPS rates: for a longer schedule, take slices or a stride
    (rates[::1000]). `shape`, `size` and `dtype` are an array's; for arithmetic, convert first:
    np.asarray(rates) * 2."""

    dtype = np.dtype(np.float32)
    ndim = 1

    def __init__(self, options, steps_per_epoch, count):
        self._options = options
        self._per_epoch = steps_per_epoch
        self._count = count

    def __len__(self):
        return self._count

    @property
    def size(self):
        return self._count

    @property
    def shape(self):
        return (self._count,)

    def __repr__(self):
        epochs = self._count // self._per_epoch
        return f"<nudge.LearningRates: {self._count} steps ({epochs} epochs of {self._per_epoch})>"

    def _rate(self, step):
        value = ctypes.c_float()
        check(_lib.lib.nudge_learning_rate_at(ctypes.byref(self._options), step, self._per_epoch, ctypes.byref(value)),
              _settings.python_words)
        return value.value

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._array(range(self._count)[index])
        try:
            step = operator.index(index)
        except TypeError:
            if isinstance(index, float):
                raise TypeError("LearningRates indices must be integers, slices or numpy indices, not float") from None
            return self._array(range(self._count))[index]  # numpy's indexing (rates[:, None], masks) on every step
        if step < 0:
            step += self._count
        if not 0 <= step < self._count:
            raise IndexError(f"step {index} is out of range: the schedule has {self._count} steps")
        return np.float32(self._rate(step))

    def __iter__(self):
        for step in range(self._count):
            yield np.float32(self._rate(step))

    def __array__(self, dtype=None, copy=None):
        array = self._array(range(self._count))
        return array if dtype is None else array.astype(dtype, copy=False)

    def _array(self, steps):
        if len(steps) > MAX_STEPS:
            raise InvalidArgumentError(
                f"reading {len(steps)} learning rates at once; an array holds at most {MAX_STEPS} (the library "
                f"computes each step in turn): read a slice, or every k-th step, e.g. rates[::{-(-len(steps) // MAX_STEPS)}]")
        out = np.empty(len(steps), dtype=np.float32)
        rate_at, options, per_epoch = _lib.lib.nudge_learning_rate_at, ctypes.byref(self._options), self._per_epoch
        value = ctypes.c_float()
        pointer = ctypes.byref(value)
        for position, step in enumerate(steps):
            if rate_at(options, step, per_epoch, pointer) != _lib.OK:
                self._rate(step)  # raises the library's error
            out[position] = value.value
        return out
