"""nudge.Network: a multilayer perceptron that lives in libnudge.so."""

import collections
import contextlib
import ctypes
import html
import os
import signal
import threading

import numpy as np

from . import _arrays, _checkpoint, _checks, _collective, _lib, _options, _settings, _streaming
from ._schedule import LearningRates, learning_rates  # noqa: F401 - nudge.network.learning_rates, as before
from ._errors import CancelledError, InvalidArgumentError, NudgeMemoryError, ShapeError, check, error_for
from ._progress import make_progress
from .history import History

_ACTIVATION_NAMES = {code: name for name, code in _lib.ACTIVATIONS.items()}

#: What `Network.evaluate` returns for a classifier: the mean loss and the fraction classified correctly.
Evaluation = collections.namedtuple("Evaluation", ["loss", "accuracy"])
#: What `Network.evaluate` returns for a regression network (target values, an output layer other than
#: sigmoid or softmax): the mean loss, mean squared error, mean absolute error and R^2.
RegressionEvaluation = collections.namedtuple("RegressionEvaluation", ["loss", "mse", "mae", "r2"])


def _code(table, value, what):
    if value not in table:
        raise InvalidArgumentError(f"{what} {value!r} is not one of {', '.join(sorted(table))}")
    return table[value]


#: The widest layer nudge_network_create takes (nudge.h: "Each 1 to 16777216").
MAX_LAYER_WIDTH = 1 << 24


def _width(value, index):
    """A layer width as an int: whole numbers of the library's range only, so that none wraps around
    in its size_t."""
    return _checks.whole_number(value, f"layer_sizes[{index}]", 1, MAX_LAYER_WIDTH)


class Network:
    """A fully connected network, trained by mini-batch gradient descent in libnudge.so.

    >>> net = nudge.Network([784, 128, 10], hidden="relu", output="softmax", seed=0)
    >>> history = net.fit(X_train, y_train, epochs=5, validation_split=0.1)
    >>> net.classify(X_test)

    `layer_sizes` lists the widths, input first. `hidden` is the activation of every hidden layer,
    or a list with one per hidden layer; `output` is the output layer's. Activations: "identity",
    "sigmoid", "tanh", "relu", "leaky_relu", "softmax" (output only). The same seed gives the same
    initial weights, bit for bit.

    Integer arguments (widths, seeds, counts) are whole numbers: ints, numpy integers or floats such
    as 3.0; bools, strings, None and numbers outside the argument's range are refused with
    InvalidArgumentError ("seed is 2.9; it must be a whole number from -9223372036854775808 to
    18446744073709551615"), never rounded or wrapped. A seed is 64 bits: a negative one stands for
    its two's-complement pattern (-1 and 2**64 - 1 are the same seed); for a random run, pass a
    random seed (secrets.randbits(64)). Arrays (parameters, layers, normalisation, samples) are
    numbers of any dtype, converted to float32; str, bytes, datetime, object and complex arrays are
    refused.

    Prediction may run from many threads at once (the library releases the GIL and only reads the
    network); training and setting parameters must not overlap other use of the same network.
    """

    def __init__(self, layer_sizes, hidden="relu", output="softmax", seed=0):
        sizes = [_width(s, i) for i, s in enumerate(layer_sizes)]
        if len(sizes) < 2:
            raise InvalidArgumentError(f"layer_sizes needs at least 2 entries (input and output), got {len(sizes)}")
        hidden_count = len(sizes) - 2
        names = [hidden] * hidden_count if isinstance(hidden, str) else list(hidden)
        if len(names) != hidden_count:
            raise InvalidArgumentError(f"hidden has {len(names)} activations but the network has {hidden_count} hidden layers")
        codes = [_code(_lib.ACTIVATIONS, name, "activation") for name in names + [output]]
        c_sizes = (ctypes.c_size_t * len(sizes))(*sizes)
        c_codes = (ctypes.c_int32 * len(codes))(*codes)
        handle = ctypes.POINTER(_lib.nudge_network)()
        check(_lib.lib.nudge_network_create(c_sizes, len(sizes), c_codes, _checks.seed(seed), ctypes.byref(handle)))
        self._adopt(handle)

    @classmethod
    def _from_handle(cls, handle):
        network = cls.__new__(cls)
        network._adopt(handle)
        return network

    def _adopt(self, handle):
        self._handle = handle
        self._trainer = None
        self._lock = threading.Lock()  # guards _trainer creation
        self.history = None
        count = ctypes.c_size_t()
        check(_lib.lib.nudge_network_layer_count(handle, ctypes.byref(count)))
        sizes = (ctypes.c_size_t * count.value)()
        check(_lib.lib.nudge_network_layer_sizes(handle, sizes, count.value))
        codes = (ctypes.c_int32 * (count.value - 1))()
        check(_lib.lib.nudge_network_activations(handle, codes, count.value - 1))
        parameters = ctypes.c_size_t()
        check(_lib.lib.nudge_network_parameter_count(handle, ctypes.byref(parameters)))
        self._sizes = tuple(int(s) for s in sizes)
        self._activations = tuple(_ACTIVATION_NAMES[c] for c in codes)
        self._parameter_count = parameters.value

    # -- lifetime -------------------------------------------------------------------------------

    @property
    def handle(self):
        """The C handle (`nudge_network *`); raises if the network is closed."""
        if self._handle is None:
            raise InvalidArgumentError("this Network is closed")
        return self._handle

    @property
    def closed(self):
        return self._handle is None

    def close(self):
        """Frees the network in the library. Safe to call more than once."""
        trainer, handle = getattr(self, "_trainer", None), getattr(self, "_handle", None)
        self._trainer = self._handle = None
        try:
            if trainer is not None:
                _lib.lib.nudge_trainer_free(trainer)
            if handle is not None:
                _lib.lib.nudge_network_free(handle)
        except (AttributeError, TypeError):  # interpreter shutdown: the module may be half torn down
            pass

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- architecture -----------------------------------------------------------------------------

    @property
    def layer_sizes(self):
        return self._sizes

    @property
    def activations(self):
        """One activation name per layer after the input."""
        return self._activations

    @property
    def input_size(self):
        return self._sizes[0]

    @property
    def output_size(self):
        return self._sizes[-1]

    @property
    def parameter_count(self):
        return self._parameter_count

    def __repr__(self):
        if self.closed:
            return "<nudge.Network (closed)>"
        layers = "-".join(str(s) for s in self._sizes)
        return f"<nudge.Network {layers} ({', '.join(self._activations)}), {self._parameter_count:,} parameters>"

    def _repr_html_(self):
        if self.closed:
            return "<p><b>nudge.Network</b> (closed)</p>"
        rows = [f"<tr><td>input</td><td>{self._sizes[0]}</td><td></td><td></td></tr>"]
        for i, activation in enumerate(self._activations):
            fan_in, fan_out = self._sizes[i], self._sizes[i + 1]
            rows.append(f"<tr><td>dense {i + 1}</td><td>{fan_out}</td><td>{html.escape(activation)}</td>"
                        f"<td>{fan_in * fan_out + fan_out:,}</td></tr>")
        return ("<div><b>nudge.Network</b>, " + f"{self._parameter_count:,} parameters"
                "<table><thead><tr><th>layer</th><th>units</th><th>activation</th><th>parameters</th></tr></thead>"
                "<tbody>" + "".join(rows) + "</tbody></table></div>")

    # -- parameters ---------------------------------------------------------------------------------

    @property
    def parameters(self):
        """All weights and biases as one flat float32 vector W (a copy), in the library's order:
        layer by layer, the (fan_out, fan_in) weight matrix row by row, then the fan_out biases.
        Assign a vector of the same length to replace them."""
        out = np.empty(self._parameter_count, dtype=np.float32)
        check(_lib.lib.nudge_network_get_parameters(self.handle, _arrays.float_pointer(out), out.size))
        return out

    @parameters.setter
    def parameters(self, values):
        array = _arrays.floats(values, "parameters")
        if array.ndim != 1:
            raise _arrays.ShapeError(f"parameters has shape {array.shape}; expected ({self._parameter_count},)")
        check(_lib.lib.nudge_network_set_parameters(self.handle, _arrays.float_pointer(array), array.size))

    def split_parameters(self, vector):
        """Cuts a flat vector in parameter order (`parameters`, or a `gradient`) into
        [(weights (fan_out, fan_in), biases (fan_out,)), ...] per layer, as views of `vector`."""
        flat = np.asarray(vector)
        if flat.shape != (self._parameter_count,):
            raise _arrays.ShapeError(f"vector has shape {flat.shape}; expected ({self._parameter_count},)")
        return self._split(flat)

    def _split(self, flat):
        views, offset = [], 0
        for fan_in, fan_out in zip(self._sizes, self._sizes[1:]):
            weights = flat[offset:offset + fan_in * fan_out].reshape(fan_out, fan_in)
            offset += fan_in * fan_out
            views.append((weights, flat[offset:offset + fan_out]))
            offset += fan_out
        return views

    @property
    def weights(self):
        """Per layer, the (fan_out, fan_in) weight matrix: views into one copy of `parameters`
        (each access copies every parameter; use `layers()` or `split_parameters` to read many)."""
        return [w for w, _ in self._split(self.parameters)]

    @property
    def biases(self):
        """Per layer, the bias vector: views into one copy of `parameters` (each access copies
        every parameter)."""
        return [b for _, b in self._split(self.parameters)]

    def layers(self):
        """[(weights, biases), ...] as views into one copy of `parameters`; change them and assign
        the copy back with `set_layers`."""
        return self._split(self.parameters)

    def set_layers(self, layers):
        """Replaces every parameter from [(weights, biases), ...] as `layers()` returns them."""
        layers = list(layers)
        if len(layers) != len(self._sizes) - 1:
            raise _arrays.ShapeError(f"layers has {len(layers)} entries; the network has {len(self._sizes) - 1} layers")
        parts = []
        for i, ((w, b), fan_in, fan_out) in enumerate(zip(layers, self._sizes, self._sizes[1:])):
            w, b = _arrays.floats(w, f"layer {i + 1} weights"), _arrays.floats(b, f"layer {i + 1} biases")
            # Checked here: a transposed matrix has the right size and would otherwise be taken silently.
            if w.shape != (fan_out, fan_in) or b.shape != (fan_out,):
                raise _arrays.ShapeError(f"layer {i + 1} has weights {w.shape} and biases {b.shape}; "
                                         f"expected ({fan_out}, {fan_in}) and ({fan_out},)")
            parts += [w.ravel(), b]
        self.parameters = np.concatenate(parts)

    # -- metadata --------------------------------------------------------------------------------------

    @property
    def metadata(self):
        """The key/value strings saved with the model, as a dict (a copy); set them with `set_metadata`."""
        count = ctypes.c_size_t()
        check(_lib.lib.nudge_network_metadata_count(self.handle, ctypes.byref(count)))
        result = {}
        for i in range(count.value):
            key = self._read_string(lambda buf, cap, n: _lib.lib.nudge_network_metadata_key(self.handle, i, buf, cap, n))
            result[key] = self._read_string(
                lambda buf, cap, n: _lib.lib.nudge_network_get_metadata(self.handle, key.encode(), buf, cap, n))
        return result

    def set_metadata(self, key, value):
        """Sets one entry (None removes it). Keys and values are text: a str, or a value whose str() is
        stored (3 becomes "3"); bytes are refused rather than guessed at (decode them first)."""
        check(_lib.lib.nudge_network_set_metadata(self.handle, _arrays.c_string(key, "metadata key"),
                                                  None if value is None else _arrays.c_string(value, "metadata value")))

    @staticmethod
    def _read_string(call):
        length = ctypes.c_size_t()
        check(call(None, 0, ctypes.byref(length)))
        buffer = ctypes.create_string_buffer(length.value + 1)
        check(call(buffer, len(buffer), ctypes.byref(length)))
        return buffer.raw[:length.value].decode("utf-8")

    # -- prediction ------------------------------------------------------------------------------------

    def predict(self, X):
        """The output layer's values for each row of X: an (n, outputs) float32 array."""
        x = _arrays.samples(X, self.input_size)
        out = np.empty((x.shape[0], self.output_size), dtype=np.float32)
        check(_lib.lib.nudge_predict(self.handle, _arrays.float_pointer(x), x.shape[0],
                                     _arrays.float_pointer(out), out.size))
        return out

    def classify(self, X):
        """The class of each row of X (the index of its largest output): an (n,) int32 array."""
        x = _arrays.samples(X, self.input_size)
        out = np.empty(x.shape[0], dtype=np.int32)
        check(_lib.lib.nudge_classify(self.handle, _arrays.float_pointer(x), x.shape[0],
                                      _arrays.int32_pointer(out), out.size))
        return out

    def evaluate(self, X, y, loss="auto", sample_weight=None):
        """How well the network does on labelled data; `y` as in `fit`.

        With `sample_weight` (one weight per row, finite, 0 or more, not all 0), the loss and
        accuracy are weighted means: sum(w * loss) / sum(w), and the weight of the samples classified
        correctly over sum(w); a regression's mse, mae and r2 are not weighted.

        For a classifier (a sigmoid or softmax output layer), or whenever y holds class labels: an
        Evaluation(loss, accuracy), the mean loss and the fraction classified correctly. For a
        regression network (any other output layer) with target values: a RegressionEvaluation(loss,
        mse, mae, r2): the mean loss, the mean squared and absolute errors over every sample and
        output, and R^2 averaged over the outputs (1 is a perfect fit, 0 no better than predicting
        the mean; an output whose targets are all equal counts 1 if matched exactly, else 0). Both
        are named tuples, so `loss, accuracy = net.evaluate(X, y)` keeps working for classifiers."""
        x = _arrays.samples(X, self.input_size)
        kind, t = _arrays.targets(y, x.shape[0], self.output_size)
        value, accuracy = ctypes.c_double(), ctypes.c_double()
        code = _code(_lib.LOSSES, loss, "loss")
        outputs = (code, ctypes.byref(value), ctypes.byref(accuracy))
        if sample_weight is None:
            if kind == "labels":
                check(_lib.lib.nudge_evaluate_labels(self.handle, _arrays.float_pointer(x), _arrays.int32_pointer(t),
                                                     x.shape[0], *outputs))
                return Evaluation(value.value, accuracy.value)
            check(_lib.lib.nudge_evaluate(self.handle, _arrays.float_pointer(x), _arrays.float_pointer(t), x.shape[0],
                                          *outputs))
        else:
            w = _arrays.weights(sample_weight, x.shape[0])
            if kind == "labels":
                check(_lib.lib.nudge_evaluate_labels_weighted(self.handle, _arrays.float_pointer(x),
                                                              _arrays.int32_pointer(t), _arrays.float_pointer(w),
                                                              x.shape[0], *outputs))
                return Evaluation(value.value, accuracy.value)
            check(_lib.lib.nudge_evaluate_weighted(self.handle, _arrays.float_pointer(x), _arrays.float_pointer(t),
                                                   _arrays.float_pointer(w), x.shape[0], *outputs))
        if self._activations[-1] in ("sigmoid", "softmax"):
            return Evaluation(value.value, accuracy.value)
        metrics = _lib.nudge_regression_metrics(struct_size=ctypes.sizeof(_lib.nudge_regression_metrics))
        check(_lib.lib.nudge_evaluate_regression(self.handle, _arrays.float_pointer(x), _arrays.float_pointer(t),
                                                 x.shape[0], ctypes.byref(metrics)))
        return RegressionEvaluation(value.value, metrics.mse, metrics.mae, metrics.r2)

    def gradient(self, X, y, loss="auto", return_loss=False, sample_weight=None):
        """The gradient of the mean loss over (X, y) with respect to every parameter, as a flat
        float32 vector in the order of `parameters`: -gradient says how to nudge each weight to
        lower the cost. The network is not changed. With `return_loss`, returns (gradient, loss).
        With `sample_weight`, of the weighted mean loss sum(w * loss) / sum(w)."""
        x = _arrays.samples(X, self.input_size)
        kind, t = _arrays.targets(y, x.shape[0], self.output_size)
        if kind == "labels":
            t = np.eye(self.output_size, dtype=np.float32)[t]
        out = np.empty(self._parameter_count, dtype=np.float32)
        value = ctypes.c_double()
        rest = (_code(_lib.LOSSES, loss, "loss"), _arrays.float_pointer(out), out.size, ctypes.byref(value))
        if sample_weight is None:
            check(_lib.lib.nudge_gradient(self.handle, _arrays.float_pointer(x), _arrays.float_pointer(t), x.shape[0],
                                          *rest))
        else:
            w = _arrays.weights(sample_weight, x.shape[0])
            check(_lib.lib.nudge_gradient_weighted(self.handle, _arrays.float_pointer(x), _arrays.float_pointer(t),
                                                   _arrays.float_pointer(w), x.shape[0], *rest))
        return (out, value.value) if return_loss else out

    # -- training ---------------------------------------------------------------------------------------

    def fit(self, X, y, **options):
        # The signature and the option part of the docstring come from the option table: see below.
        settings = _settings.bind(self, X, y, options)
        group = _collective.Group.of(settings["comm"])
        # With comm, a check that fails on one rank only raises on every rank (none is left waiting).
        with _collective.agreement(group):
            x = _arrays.samples(X, self.input_size)
            kind, t = _arrays.targets(y, x.shape[0], self.output_size)
            c_options, rates = _settings.train_options(settings, len(self._sizes))
            weights = None
            if settings["sample_weight"] is not None:
                weights = _arrays.weights(settings["sample_weight"], x.shape[0])
                c_options.sample_weights = _arrays.float_pointer(weights)
            validation = self._set_validation_data(c_options, settings["validation_data"], kind)
            path, every = _checkpoint.keywords(settings)
            _collective.check_data(settings["data"], group)
        if group is not None:
            group.check_same("options", _collective.shared(settings, kind, x.shape[0]))
        if settings["resume"]:
            self._resume(path, group)
        run = _Run(settings["verbose"] and (group is None or group.rank == 0), c_options.epochs)
        self.history = run.history
        with self._attached(c_options, path, every, group, settings["data"]):
            error, report = self._train(c_options, x, t, kind, run)
        del rates, weights, validation  # the C options pointed into these arrays: kept alive until here
        return run.finish(report, error if group is None else group.failure(error))

    fit.__signature__ = _settings.FIT_SIGNATURE
    fit.__doc__ = _settings.fit_doc(
        """Trains on X (n, inputs) and y: integer class labels (n,), or targets (n, outputs).

        >>> history = net.fit(X, y, epochs=5, validation_split=0.1, early_stopping=True)
        >>> history = net.fit("X.npy", "y.npy", epochs=1)       # files larger than memory

        X and y may be paths of .npy files (str or os.PathLike), opened with np.load(path,
        mmap_mode="r"), or memory-mapped arrays (np.memmap): C-contiguous float32 data goes to the
        library without a copy, and pages in from the file as training reads it. A file-backed array
        of another dtype or order is converted only up to 256 MiB (labels: 4 bytes per sample);
        beyond, fit refuses with the size of the copy and how to write the file as float32.

        Every training option is a keyword with the default below; see `nudge.learning_rates` to
        plot a schedule.""",
        """        Calling fit again goes on with the same optimiser state (Adam's moments, momentum).
        Returns a History; `self.history` holds the latest one, also after an interruption.
        Ctrl-C (or the notebook's stop button) ends training between two batches: the network
        keeps the weights it has, and KeyboardInterrupt is raised afterwards.
        Raises NotFiniteError when the loss diverges (the network keeps the last weights whose
        loss was finite; the History records it), InvalidArgumentError (a ValueError) naming the
        keyword of an option out of range, other ValueError subclasses for bad data, and
        TypeError for an unknown keyword.

        Checkpoints: with checkpoint=PATH, a run killed at any moment continues where its last
        checkpoint left it when the same fit call is made again with resume=True:

        >>> net.fit(X, y, epochs=50, checkpoint="run.nudge", checkpoint_every=100, resume=True)

        Data-parallel training with MPI (`pip install nudge[mpi]`, run under mpirun): every rank
        makes the same call with its communicator. batch_size is the global batch, shared by the
        ranks; every rank ends with the same weights, bit for bit, and the same History (rank 0's
        epoch times too); only rank 0 shows progress (verbose is off on the others) and writes
        the checkpoint. An error on one rank raises on every rank: there its own, on the others a
        CollectiveError naming the failing rank.

        >>> from mpi4py import MPI
        >>> net.fit(X, y, epochs=5, batch_size=256, comm=MPI.COMM_WORLD)
        """)

    def fit_batches(self, batches, epochs=1, verbose=True, validation_data=None, **options):
        return _streaming.fit_batches(self, batches, epochs, verbose, validation_data, options)

    fit_batches.__doc__ = _streaming.FIT_BATCHES_DOC

    def _set_validation_data(self, options, validation_data, kind):
        """Points `options` at (X_val, y_val), in the form of y (`kind`); returns the arrays to keep alive."""
        if validation_data is None:
            return None
        if len(validation_data) not in (2, 3):
            raise InvalidArgumentError("validation_data must be a pair (X_val, y_val) or a triple (X_val, y_val, w_val)")
        vx = _arrays.samples(validation_data[0], self.input_size, "X_val")
        if vx.shape[0] == 0:
            raise InvalidArgumentError("validation_data has no samples (X_val has 0 rows); give at least one, or "
                                       "validation_data=None to train without validation data")
        vkind, vt = _arrays.targets(validation_data[1], vx.shape[0], self.output_size, "y_val")
        if kind == "targets" and vkind == "labels":
            vt = np.eye(self.output_size, dtype=np.float32)[vt]
        elif kind == "labels" and vkind == "targets":
            raise InvalidArgumentError("y holds class labels but y_val holds target rows; give both in the same form")
        vw = None
        if len(validation_data) == 3 and validation_data[2] is not None:
            vw = _arrays.weights(validation_data[2], vx.shape[0], "w_val")
            options.validation_weights = _arrays.float_pointer(vw)
        options.validation_inputs = _arrays.float_pointer(vx)
        options.validation_count = vx.shape[0]
        if kind == "labels":
            options.validation_labels = _arrays.int32_pointer(vt)
        else:
            options.validation_targets = _arrays.float_pointer(vt)
        return vx, vt, vw

    def _ensure_trainer(self, options):
        """The network's trainer (its optimiser state), created by the first fit."""
        with self._lock:
            if self._trainer is None:
                trainer = ctypes.POINTER(_lib.nudge_trainer)()
                check(_lib.lib.nudge_trainer_create(self.handle, ctypes.byref(options), ctypes.byref(trainer)),
                      _settings.python_words)
                self._trainer = trainer

    def _resume(self, path, group):
        """fit(resume=True): takes the network and training state of the checkpoint at `path` when there
        is one (rank 0's, with a group); changes nothing when there is none."""
        def load(file):
            loaded = type(self)._from_trainer(_checkpoint.load(file))
            if (loaded.layer_sizes, loaded.activations) != (self._sizes, self._activations):
                text = _checkpoint.architecture(loaded)
                loaded.close()
                raise InvalidArgumentError(
                    f"resume: the checkpoint {path} holds a {text} network, but this Network is "
                    f"{_checkpoint.architecture(self)}; resume with a Network of the checkpoint's layers "
                    "(or Network.load_checkpoint), or give another checkpoint path to start afresh")
            return loaded

        if group is not None:
            loaded = group.root_file(path, load, lambda network: network.close())
        else:
            loaded = load(path) if os.path.exists(path) else None
        if loaded is not None:  # swapped, so that closing `loaded` frees this Network's old handles
            self._handle, loaded._handle = loaded._handle, self._handle
            self._trainer, loaded._trainer = loaded._trainer, self._trainer
            loaded.close()

    @contextlib.contextmanager
    def _attached(self, options, path, every, group, data):
        """The trainer, with fit's checkpoint file and communicator attached for one training call."""
        trainer = None
        try:
            with _collective.agreement(group):
                self._ensure_trainer(options)
                trainer = self._trainer
                if path is not None:
                    _checkpoint.attach(trainer, path, every)
                if group is not None:
                    group.attach(trainer, data)
            yield
        finally:
            if trainer is not None:
                _checkpoint.detach(trainer)
                if group is not None:
                    group.detach(trainer)

    def _train(self, options, x, t, kind, run):
        """The C training call, reporting to `run`; returns (the error it failed with or None, its report)."""
        epoch_callback = _lib.nudge_progress_fn(run.on_epoch)
        batch_callback = _lib.nudge_batch_fn(run.on_batch)
        options.progress = epoch_callback
        report = _lib.nudge_train_report()
        report.struct_size = ctypes.sizeof(report)
        report.stop_reason = -1  # the library leaves the report untouched when training never started
        self._ensure_trainer(options)
        # Ctrl-C: Python raises KeyboardInterrupt at the next bytecode of the main thread, which may be the
        # first line of a callback, outside any try, where ctypes would swallow it. So while the C call
        # runs, SIGINT only sets a flag; the next callback then asks the library to stop.
        previous_handler = _defer_sigint(lambda signum, frame: run.interrupted.append(signum))
        # Each batch callback takes the GIL, which slows a training thread while other threads run
        # Python: ask for it only when there is a bar to draw or a Ctrl-C to notice between batches.
        if run.progress or previous_handler is not None:
            options.batch_progress = batch_callback
        labels = kind == "labels"
        train = _lib.lib.nudge_trainer_train_labels if labels else _lib.lib.nudge_trainer_train
        try:
            status = train(self._trainer, _arrays.float_pointer(x),
                           _arrays.int32_pointer(t) if labels else _arrays.float_pointer(t), x.shape[0],
                           ctypes.byref(options), ctypes.byref(report))
            return (None if status == _lib.OK else error_for(status, _settings.python_words)), report
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)

    # -- input normalisation -------------------------------------------------------------------------------

    @property
    def normalization(self):
        """The input normalisation as (offset, scale) float32 arrays (length 1 or input_size), or
        None. Every input x becomes (x - offset) * scale before the first layer, in training and in
        prediction; it is saved with the model."""
        count = ctypes.c_size_t()
        check(_lib.lib.nudge_network_get_normalization(self.handle, None, None, 0, ctypes.byref(count)))
        if count.value == 0:
            return None
        offset = np.empty(count.value, dtype=np.float32)
        scale = np.empty(count.value, dtype=np.float32)
        check(_lib.lib.nudge_network_get_normalization(self.handle, _arrays.float_pointer(offset),
                                                       _arrays.float_pointer(scale), count.value, ctypes.byref(count)))
        return offset, scale

    def set_normalization(self, offset, scale=None):
        """Sets the input normalisation: offset and scale are scalars or arrays of input_size values
        (scale defaults to 1). `set_normalization(None)` removes it."""
        if offset is None:
            check(_lib.lib.nudge_network_set_normalization(self.handle, None, None, 0))
            return
        o = _arrays.floats(offset, "offset").ravel()
        s = _arrays.floats(1.0 if scale is None else scale, "scale").ravel()
        try:
            o, s = (np.ascontiguousarray(a) for a in np.broadcast_arrays(o, s))
        except ValueError:
            raise ShapeError(f"offset has {o.size} values and scale {s.size}; give the same count, or a scalar") from None
        check(_lib.lib.nudge_network_set_normalization(self.handle, _arrays.float_pointer(o), _arrays.float_pointer(s),
                                                       o.size))

    def fit_normalization(self, X, kind="global"):
        """Fits the input normalisation on X: "global" (one mean and standard deviation over
        everything: images), "per_feature" (one per input: tables) or "none" (removes it)."""
        x = _arrays.samples(X, self.input_size)
        check(_lib.lib.nudge_network_fit_normalization(self.handle, _arrays.float_pointer(x), x.shape[0],
                                                       _code(_lib.NORMALIZATIONS, kind, "kind")))

    # -- files --------------------------------------------------------------------------------------------

    def save(self, path):
        """Writes the model file atomically: a failed save leaves any old file at `path` intact.

        The one exception: when only the final flush of the folder fails, NudgeIOError says that
        `path` already holds the new file, which may not survive a power loss. A path that is not a
        regular file (a FIFO, device, socket or folder) is refused with NudgeIOError and left as it
        was; a symbolic link means the file it points to, which is replaced (the link stays)."""
        check(_lib.lib.nudge_save(self.handle, _arrays.c_path(path)))

    @classmethod
    def load(cls, path):
        """Reads a model file written by `save` (or by any Nudge program)."""
        handle = ctypes.POINTER(_lib.nudge_network)()
        check(_lib.lib.nudge_load(_arrays.c_path(path), ctypes.byref(handle)))
        return cls._from_handle(handle)

    def save_checkpoint(self, path):
        """Writes the network and its whole training state (optimiser state, random state, position in
        the run, epochs so far) atomically to `path`, for Network.load_checkpoint or fit(resume=True);
        Network.load reads the file as a plain network. The training state comes from fit: a Network
        that was never fitted (nor loaded with load_checkpoint) has none to save."""
        if self._trainer is None:
            raise InvalidArgumentError("this Network is closed" if self.closed else
                                       "save_checkpoint: this Network has no training state yet (call fit, or load "
                                       "one with Network.load_checkpoint); save() writes the network alone")
        _checkpoint.save(self._trainer, path)

    @classmethod
    def load_checkpoint(cls, path):
        """A Network with the network and training state of a checkpoint (fit(checkpoint=...) or
        save_checkpoint). When the checkpoint was taken during a run, the next fit on the same data with
        the same options continues that run where it stopped, and ends bit-identical to an uninterrupted
        run (it returns at once if the run had finished); later fits go on with its optimiser state."""
        return cls._from_trainer(_checkpoint.load(path))

    @classmethod
    def _from_trainer(cls, trainer):
        """A Network that owns `trainer` and a handle on its network (the trainer is freed on failure)."""
        try:
            network = cls._from_handle(_checkpoint.network_of(trainer))
        except BaseException:
            _lib.lib.nudge_trainer_free(trainer)
            raise
        network._trainer = trainer
        return network

    @property
    def training_position(self):
        """Where a run loaded from a checkpoint stands, as TrainingPosition(in_run, finished, epochs_done,
        steps): `in_run` while the next fit continues that run, `finished` when it had ended (the next
        fit only reports it), `epochs_done` and `steps` how far it got. None without training state
        (no fit yet, nor load_checkpoint)."""
        trainer = self._trainer
        return None if trainer is None else _checkpoint.position(trainer)

    def to_onnx(self, path=None):
        """Exports the network as an ONNX model (opset 13) for ONNX Runtime and other ONNX consumers:
        input "input" (float32, [N, input_size]), output "output" (float32, [N, output_size]), and with
        class names (metadata "class_names", one per output, one per line) a second output "label"
        (int64, ArgMax). The normalisation, layers and metadata go in as docs/ONNX.md describes.

        With `path`, writes the file atomically (a failed export leaves any old file intact) and
        returns None; without, returns the model's bytes."""
        if path is not None:
            check(_lib.lib.nudge_export_onnx(self.handle, _arrays.c_path(path)))
            return None
        return _buffer_of(_lib.lib.nudge_export_onnx_to_buffer, self.handle, "Network.to_onnx", "ONNX model")

    @classmethod
    def from_onnx(cls, source):
        """A network from an ONNX model of a plain multilayer perceptron: a path, or the model's bytes.

        Reads models from `to_onnx`, PyTorch's torch.onnx.export of an nn.Sequential of Linear layers and
        activations, and skl2onnx's MLPClassifier (options={"zipmap": False}) and MLPRegressor; the result
        can be trained further with fit. A graph with anything else raises NudgeFormatError naming the
        first unsupported node."""
        handle = ctypes.POINTER(_lib.nudge_network)()
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            check(_lib.lib.nudge_import_onnx_from_buffer(data, len(data), ctypes.byref(handle)))
        else:
            check(_lib.lib.nudge_import_onnx(_arrays.c_path(source), ctypes.byref(handle)))
        return cls._from_handle(handle)

    def to_bytes(self):
        """The model file as bytes. Raises NudgeMemoryError (a MemoryError) when they do not fit in
        the memory left: the library writes straight into one buffer, which is then copied once."""
        return _buffer_of(_lib.lib.nudge_save_to_buffer, self.handle, "Network.to_bytes", "model file")

    @classmethod
    def from_bytes(cls, data):
        """A network from model file bytes (`to_bytes`, or a file's contents)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            # bytes(5) would be five zero bytes, and bytes(10**12) a terabyte.
            raise InvalidArgumentError(f"data is {type(data).__name__}; it must be bytes (a model file's contents, "
                                       "as to_bytes returns them)")
        data = bytes(data)
        handle = ctypes.POINTER(_lib.nudge_network)()
        check(_lib.lib.nudge_load_from_buffer(data, len(data), ctypes.byref(handle)))
        return cls._from_handle(handle)

    def clone(self):
        """An independent copy (architecture, parameters, metadata; not the optimiser state)."""
        handle = ctypes.POINTER(_lib.nudge_network)()
        check(_lib.lib.nudge_network_clone(self.handle, ctypes.byref(handle)))
        return type(self)._from_handle(handle)

    # pickle, copy and joblib go through the model file format.
    def __reduce__(self):
        return (type(self).from_bytes, (self.to_bytes(),))

    def __copy__(self):
        return self.clone()

    def __deepcopy__(self, memo):
        return self.clone()


class _Run:
    """One fit call's Python side: the History its callbacks fill, the progress display, and what they
    carry across the C call: an exception raised inside one, a Ctrl-C."""

    def __init__(self, verbose, epochs):
        self.history = History()
        self.progress = make_progress(verbose, epochs)
        self.pending = []  # an exception raised inside a callback, re-raised once the C call returns
        self.interrupted = []  # set by fit's SIGINT handler while the C call runs

    def on_epoch(self, report, _user):
        try:
            self.history._append(report.contents)
            if self.progress:
                self.progress.epoch(report.contents)
            return 1 if self.interrupted else 0
        except BaseException as error:  # noqa: BLE001 - carried across the C call
            self.pending.append(error)
            return 1

    def on_batch(self, report, _user):
        try:
            if self.progress:
                r = report.contents
                self.progress.batch(r.epoch, r.batch, r.batch_count, r.loss)
            return 1 if self.interrupted else 0
        except BaseException as error:  # noqa: BLE001 - KeyboardInterrupt from a custom handler
            self.pending.append(error)
            return 1

    def finish(self, report, error):
        """Records how the C call ended in the History; raises what it should, else returns the History."""
        history = self.history
        if self.progress:
            self.progress.close()
        if report.stop_reason != -1:
            # The report is filled whenever training ran (see nudge_train in nudge.h).
            history.stop_reason = _lib.STOP_REASONS.get(report.stop_reason)
            history.best_epoch = int(report.best_epoch)
        if self.interrupted and not self.pending:
            self.pending.append(KeyboardInterrupt())
        if self.pending:
            history.stop_reason = "interrupted" if isinstance(self.pending[0], KeyboardInterrupt) else "cancelled"
            history.message = str(error) if error else ""
            raise self.pending[0]
        if error is not None:
            history.message = str(error)
            if isinstance(error, CancelledError):
                history.stop_reason = "cancelled"
            raise error
        return history


def _defer_sigint(handler):
    """Installs `handler` for SIGINT and returns the previous one, when Python's default handler is in
    place on the main thread; otherwise changes nothing and returns None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return None
        return signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError):  # signals unavailable here (e.g. an embedded interpreter)
        return None


def _buffer_of(call, handle, caller, what):
    """The bytes a size-query-then-write C function (nudge_save_to_buffer and its kind) gives for `handle`."""
    size = ctypes.c_size_t()
    check(call(handle, None, 0, ctypes.byref(size)))
    try:
        buffer = bytearray(size.value)
        view = (ctypes.c_char * size.value).from_buffer(buffer)
        check(call(handle, view, size.value, ctypes.byref(size)))
        del view  # a bytearray with an exported buffer cannot be released or resized
        return bytes(buffer)
    except MemoryError as error:
        if isinstance(error, NudgeMemoryError):
            raise
        raise NudgeMemoryError(f"{caller}: cannot allocate the {size.value} bytes of the {what}; "
                               "there is not enough memory left") from None
