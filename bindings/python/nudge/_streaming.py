"""Training on data that need not fit in memory together.

`Network.fit_batches` takes (X_batch, y_batch) pairs from an iterable, or from a callable that gives
a fresh iterator per epoch, and makes one gradient step on each through the trainer's step API
(nudge_trainer_step, nudge_trainer_step_labels): only the batch in hand is in memory. `npy_batches`
gives such batches from two .npy files read through memory maps, shuffled block by block.
(Network.fit also trains from .npy paths and memory-mapped arrays, in one C call: see _arrays.)"""

import collections.abc
import ctypes
import math
import os
import time
from types import SimpleNamespace

import numpy as np

from . import _arrays, _checks, _lib, _options, _settings
from ._errors import InvalidArgumentError, NotFiniteError, NudgeError, ShapeError, check
from ._progress import make_progress
from .history import History

#: The training options a step uses (the trainer's hyper-parameters): the ones fit_batches takes.
STEP_OPTIONS = ("optimizer", "loss", "learning_rate", "momentum", "beta1", "beta2", "epsilon", "weight_decay",
                "clip_norm", "label_smoothing", "dropout", "seed")

_NO_SCHEDULE = ("a step trains at the constant learning_rate (the step API has no schedule or warm-up); "
                "call fit_batches once per phase with the rate you want")
_NO_HOLD_OUT = ("fit_batches holds nothing out and never stops early; give validation_data=(X_val, y_val) to "
                "measure every epoch, and stop when you choose")

#: Why each other training option of fit does not apply to fit_batches.
NOT_APPLICABLE = {
    "batch_size": "each batch you give is one step, of its own size",
    "shuffle": "the batches come in the order you give them (npy_batches shuffles them)",
    "normalize": ("set the input normalisation before: net.fit_normalization(X_sample) on a sample of the data, "
                  "or net.set_normalization(offset, scale); every step then applies it"),
    "validation_split": _NO_HOLD_OUT, "early_stopping": _NO_HOLD_OUT, "restore_best_weights": _NO_HOLD_OUT,
    "min_delta": _NO_HOLD_OUT,
    "schedule": _NO_SCHEDULE, "step_epochs": _NO_SCHEDULE, "step_factor": _NO_SCHEDULE,
    "min_learning_rate": _NO_SCHEDULE, "warmup_epochs": _NO_SCHEDULE,
}

FIT_BATCHES_DOC = """Trains on batches that need not fit in memory together: one gradient step per batch.

        >>> history = net.fit_batches(nudge.npy_batches("X.npy", "y.npy", 256), epochs=3)
        >>> history = net.fit_batches(lambda: my_batch_generator(), epochs=3, learning_rate=0.01)

        `batches` gives (X_batch, y_batch) pairs, y_batch in any form fit takes (labels or target
        rows). For more than one epoch it must start over on each pass: a list, an object whose
        __iter__ starts over (npy_batches gives one), or a callable returning a fresh iterator per
        epoch. A one-shot iterator (a generator) is refused with epochs > 1 before any training, and
        an iterable that gives no batches on a later pass raises then, rather than training once.

        Options: the hyper-parameters of a step, as for fit: optimizer, loss, learning_rate,
        momentum, beta1, beta2, epsilon, weight_decay, clip_norm, label_smoothing, dropout, seed.
        The others are refused with the reason (batch_size: each batch is a step; schedules: a step
        uses a constant learning_rate; normalize: fit it first with fit_normalization on a sample).
        `validation_data` (X_val, y_val) is evaluated after every epoch; verbose shows progress.

        The optimiser state (Adam's moments, momentum) goes on from the previous fit_batches call
        when it had the same options and nothing else trained in between; otherwise a call starts a
        fresh one (the trainer's options are fixed when it is made). A later fit goes on with it.

        Returns a History: per epoch the mean training loss over the epoch's samples (each batch's
        loss measured before its step), validation loss and accuracy, seconds, learning rate;
        train_accuracy is NaN (steps measure no accuracy). Errors name the epoch and batch
        ("epoch 1, batch 3: X_batch has shape (5, 3); ..."); the weights are then those after the
        last good step (stop_reason "not_finite" or "failed"). Ctrl-C stops between two steps.
        """


def fit_batches(network, batches, epochs, verbose, validation_data, options):
    """Network.fit_batches (FIT_BATCHES_DOC)."""
    epochs = _checks.convert(_options.BY_KEYWORD["epochs"], epochs, {})
    source = _Source(batches, epochs)
    settings = _step_settings(options)
    c_options, rates = _settings.train_options(settings, len(network.layer_sizes))
    key = (tuple(getattr(c_options, _options.BY_KEYWORD[k].field) for k in STEP_OPTIONS if k != "dropout"),
           None if rates is None else tuple(rates.tolist()))
    validation = _validation(network, validation_data)
    trainer = _trainer(network, c_options, key)
    del rates  # the trainer copied the dropout rates
    history = History()
    network.history = history
    network._batches_state = (trainer, key, history)
    run = _Run(network, trainer, history, make_progress(verbose, epochs), settings["loss"], validation,
               float(c_options.learning_rate))
    return run.train(source, epochs)


def _step_settings(options):
    """fit's settings (every option, its default unless given) from fit_batches' keywords."""
    for keyword in options:
        if keyword in STEP_OPTIONS:
            continue
        if keyword in _options.BY_KEYWORD:
            reason = NOT_APPLICABLE.get(keyword, "it belongs to fit's training loop, not to a step")
            raise InvalidArgumentError(f"fit_batches does not take {keyword}: {reason}")
        raise TypeError(f"fit_batches() got an unexpected keyword argument {keyword!r}")
    settings = {option.keyword: _settings.default(option) for option in _options.OPTIONS}
    settings.update(options)
    return settings


def _validation(network, validation_data):
    if validation_data is None:
        return None
    if len(validation_data) != 2:
        raise InvalidArgumentError("validation_data must be a pair (X_val, y_val)")
    x = _arrays.samples(validation_data[0], network.input_size, "X_val")
    if x.shape[0] == 0:
        raise InvalidArgumentError("validation_data has no samples (X_val has 0 rows); give at least one, or "
                                   "validation_data=None to train without validation data")
    return x, _arrays.targets(validation_data[1], x.shape[0], network.output_size, "y_val")[1]


def _trainer(network, c_options, key):
    """The network's trainer for these step options: the one the previous fit_batches call left when
    its options were the same and nothing trained since (fit sets network.history), else a new one,
    which replaces the network's trainer (so a later fit goes on with it)."""
    with network._lock:
        previous = network._trainer
        last = getattr(network, "_batches_state", None)
        if previous is not None and last is not None and last[0] is previous and last[1] == key \
                and network.history is last[2]:
            return previous
        trainer = ctypes.POINTER(_lib.nudge_trainer)()
        check(_lib.lib.nudge_trainer_create(network.handle, ctypes.byref(c_options), ctypes.byref(trainer)),
              _settings.python_words)
        network._trainer = trainer
    if previous is not None:
        _lib.lib.nudge_trainer_free(previous)
    return trainer


class _Source:
    """Where each epoch's batches come from, and how many there are when that is known."""

    def __init__(self, batches, epochs):
        self.batches = batches
        self.count = None
        self.first_count = None
        if isinstance(batches, (str, bytes, os.PathLike)):
            raise TypeError(f"batches is the path {batches!r}; for .npy files, pass "
                            "nudge.npy_batches(x_path, y_path, batch_size)")
        if isinstance(batches, collections.abc.Iterator):
            if epochs > 1:
                raise InvalidArgumentError(
                    f"batches is a one-shot iterator ({type(batches).__name__}): it can give one epoch, so "
                    f"epochs={epochs} would train once. Pass a list, an object whose __iter__ starts over "
                    "(nudge.npy_batches gives one), or a callable returning a fresh iterator per epoch "
                    "(lambda: make_batches(...))")
            self.start = lambda: batches
        elif isinstance(batches, collections.abc.Iterable) or hasattr(batches, "__getitem__"):
            self.start = lambda: iter(batches)
            if isinstance(batches, collections.abc.Sized):
                self.count = len(batches)
        elif callable(batches):
            self.start = lambda: _iterate(batches(), "batches()")
        else:
            raise TypeError("batches must give (X_batch, y_batch) pairs: an iterable, or a callable returning an "
                            f"iterator per epoch; got {type(batches).__name__}")

    def finished(self, epoch, count):
        """Records that `epoch` gave `count` batches; raises if it gave none."""
        if count == 0:
            if epoch > 1 and self.first_count:
                raise InvalidArgumentError(
                    f"batches gave no batch in epoch {epoch} after {self.first_count} in epoch 1: it cannot start "
                    "over. Pass a list, an object whose __iter__ starts over, or a callable returning a fresh "
                    "iterator per epoch")
            raise InvalidArgumentError(f"batches gave no batch in epoch {epoch}; training needs at least one")
        self.first_count = self.first_count or count
        if not isinstance(self.batches, collections.abc.Sized):
            self.count = count  # the next epoch's progress bar assumes as many


def _iterate(value, what):
    try:
        return iter(value)
    except TypeError:
        raise TypeError(f"{what} returned a {type(value).__name__}; it must return an iterable of "
                        "(X_batch, y_batch) pairs") from None


class _Run:
    """One fit_batches call: its steps, its History and its progress display."""

    def __init__(self, network, trainer, history, progress, loss, validation, learning_rate):
        self.network, self.trainer, self.history, self.progress = network, trainer, history, progress
        self.loss, self.validation, self.learning_rate = loss, validation, learning_rate

    def train(self, source, epochs):
        history = self.history
        try:
            for epoch in range(1, epochs + 1):
                report = self._epoch(epoch, source)
                history._append(report)
                if self.progress:
                    self.progress.epoch(report)
        except BaseException as error:
            history.stop_reason = ("interrupted" if isinstance(error, KeyboardInterrupt)
                                   else "not_finite" if isinstance(error, NotFiniteError) else "failed")
            history.message = str(error)
            raise
        finally:
            if self.progress:
                self.progress.close()
            monitored = history.val_loss if self.validation is not None else history.train_loss
            if monitored:
                history.best_epoch = int(np.nanargmin(monitored)) + 1 if not np.isnan(monitored).all() else 0
        history.stop_reason = "completed"
        return history

    def _epoch(self, epoch, source):
        started = time.monotonic()
        total, samples, batch = 0.0, 0, 0
        for batch, item in enumerate(source.start(), 1):
            rows, loss = self._step(epoch, batch, item)
            total += loss * rows
            samples += rows
            if self.progress:
                self.progress.batch(epoch, batch, source.count, total / samples)
        source.finished(epoch, batch)
        val_loss = val_accuracy = math.nan
        if self.validation is not None:
            measured = self.network.evaluate(*self.validation, loss=self.loss)  # no accuracy for a regression
            val_loss, val_accuracy = measured.loss, getattr(measured, "accuracy", math.nan)
        return SimpleNamespace(epoch=epoch, train_loss=total / samples, train_accuracy=math.nan,
                               validation_loss=val_loss, validation_accuracy=val_accuracy,
                               seconds=time.monotonic() - started, learning_rate=self.learning_rate)

    def _step(self, epoch, batch, item):
        """One step on one batch; returns (its rows, its mean loss before the step)."""
        where = f"epoch {epoch}, batch {batch}"
        try:
            x_batch, y_batch = item
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{where}: a batch must be a pair (X_batch, y_batch), got "
                                       f"{type(item).__name__}") from None
        network = self.network
        try:
            x = _arrays.samples(x_batch, network.input_size, "X_batch")
            kind, t = _arrays.targets(y_batch, x.shape[0], network.output_size, "y_batch")
            loss = ctypes.c_double()
            if kind == "labels":
                status = _lib.lib.nudge_trainer_step_labels(self.trainer, _arrays.float_pointer(x),
                                                            _arrays.int32_pointer(t), x.shape[0], ctypes.byref(loss))
            else:
                status = _lib.lib.nudge_trainer_step(self.trainer, _arrays.float_pointer(x), _arrays.float_pointer(t),
                                                     x.shape[0], ctypes.byref(loss))
            check(status)
        except NudgeError as error:
            raise type(error)(f"{where}: {error}", error.status) from None
        return x.shape[0], loss.value


# -- batches from .npy files -----------------------------------------------------------------------------

def npy_batches(x_path, y_path, batch_size, shuffle=True, seed=0, buffer_bytes=64 << 20):
    """Batches of rows of two .npy files (X and y, the same number of rows), read through memory
    maps, for Network.fit_batches. Iterable any number of times; each pass is one epoch.

    >>> net.fit_batches(nudge.npy_batches("X.npy", "y.npy", batch_size=256), epochs=3)

    Without shuffle, batches are consecutive slices of the files, in order, as memory-mapped views
    (no copy; the last batch may be smaller). With shuffle, the files are cut into blocks of whole
    batches (about buffer_bytes / 16 each); every pass draws a new random order of blocks (from
    `seed` and the pass number, so the same seed repeats the same passes), reads them 16 at a time
    (in file order within a group: each block is one sequential read, about buffer_bytes in all),
    shuffles the rows of those 16 blocks together and cuts them into batches. So a batch mixes rows
    from 16 places in the file, reads stay sequential within blocks, and memory holds one group of
    blocks at a time (about buffer_bytes) whatever the file size. len() is the batches per pass:
    ceil(rows / batch_size). x_path and y_path may also be arrays (np.memmap, or in memory)."""
    return NpyBatches(x_path, y_path, batch_size, shuffle, seed, buffer_bytes)


class NpyBatches:
    """What npy_batches returns: a re-iterable of (X_batch, y_batch) pairs over two mapped files."""

    BLOCKS_PER_GROUP = 16

    def __init__(self, x_path, y_path, batch_size, shuffle=True, seed=0, buffer_bytes=64 << 20):
        self.x = np.asarray(_arrays.open_npy(x_path, "x_path"))
        self.y = np.asarray(_arrays.open_npy(y_path, "y_path"))
        if self.x.ndim != 2:
            raise ShapeError(f"x_path holds an array of shape {self.x.shape}; expected (rows, inputs)")
        if self.y.ndim not in (1, 2) or self.y.shape[0] != self.x.shape[0]:
            raise ShapeError(f"y_path holds an array of shape {self.y.shape}; expected ({self.x.shape[0]},) labels "
                             f"or ({self.x.shape[0]}, outputs) targets, one row per row of x_path")
        self.batch_size = _checks.convert(_options.BY_KEYWORD["batch_size"], batch_size, {})
        self.shuffle = bool(shuffle)
        self.seed = _checks.convert(_options.BY_KEYWORD["seed"], seed, {})
        buffer_bytes = _checks.whole_number(buffer_bytes, "buffer_bytes", 1)
        row_bytes = self.x[:1].nbytes + self.y[:1].nbytes
        batches_per_block = max(1, buffer_bytes // (self.BLOCKS_PER_GROUP * row_bytes * self.batch_size))
        self.block_rows = batches_per_block * self.batch_size
        self.passes = 0

    def __len__(self):
        return -(-self.x.shape[0] // self.batch_size)

    def __repr__(self):
        return (f"<nudge.NpyBatches {self.x.shape[0]} rows, batches of {self.batch_size}, "
                f"{'shuffled by blocks of ' + str(self.block_rows) + ' rows' if self.shuffle else 'in order'}>")

    def __iter__(self):
        self.passes += 1
        if not self.shuffle:
            return self._in_order()
        return self._shuffled(np.random.default_rng([self.seed, self.passes]))

    def _in_order(self):
        for start in range(0, self.x.shape[0], self.batch_size):
            yield self.x[start:start + self.batch_size], self.y[start:start + self.batch_size]

    def _shuffled(self, rng):
        rows, size = self.x.shape[0], self.block_rows
        order = rng.permutation(-(-rows // size))
        for first in range(0, len(order), self.BLOCKS_PER_GROUP):
            blocks = np.sort(order[first:first + self.BLOCKS_PER_GROUP])
            x = np.concatenate([self.x[b * size:(b + 1) * size] for b in blocks])
            y = np.concatenate([self.y[b * size:(b + 1) * size] for b in blocks])
            mix = rng.permutation(x.shape[0])
            for start in range(0, len(mix), self.batch_size):
                chosen = mix[start:start + self.batch_size]
                yield x[chosen], y[chosen]
            del x, y
