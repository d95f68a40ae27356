"""scikit-learn estimators over `nudge.Network`: `NudgeClassifier` and `NudgeRegressor`.

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from nudge.sklearn import NudgeClassifier

    model = make_pipeline(StandardScaler(), NudgeClassifier(hidden_layer_sizes=(64,), random_state=0))
    model.fit(X_train, y_train).score(X_test, y_test)

They follow scikit-learn's estimator conventions, so they work in `Pipeline`, `GridSearchCV`,
`cross_val_score`, `clone`, pickle and joblib: the constructor only stores its keyword
arguments; `fit` checks them and the data, builds a new network and sets the fitted attributes
(names ending in "_"); `partial_fit` goes on training the same network for one epoch.

Needs scikit-learn 1.6 or later (`validate_data`, `__sklearn_tags__`).

Nothing is scaled for you. Networks train poorly on features (or regression targets) of very
different magnitudes: put a `StandardScaler` before the estimator in a `Pipeline`, and for large
regression targets wrap the regressor in `sklearn.compose.TransformedTargetRegressor(
regressor=..., transformer=StandardScaler())`.

Numerics: the library computes in float32, so inputs are converted to float32 (values beyond
float32's range are rejected as infinite) and `predict_proba` / regression outputs carry float32
precision, returned as float64 arrays. BLAS rounds a matrix product slightly differently
depending on how many rows it is given, so a sample's outputs can change in the last bits (about
one float32 ulp) with the batch it is predicted in; class predictions are not affected in practice.

Data larger than memory: X may be a memory-mapped C-contiguous float32 array (`np.load(path,
mmap_mode="r")`, np.memmap): fit, partial_fit and predict hand it to the library without a copy
(scikit-learn's finite check sums it in constant memory). One of another dtype or order is refused
above 256 MiB rather than copied whole into memory (see Network.fit). early_stopping does copy:
its validation split (train_test_split) is made in memory, so leave it off for such data.

Randomness: `random_state` is turned into 64-bit seeds with `check_random_state`: one for the
initial weights, one for shuffling and one for the early-stopping split. An int gives the same
network bit for bit on every fit (on the same machine and BLAS); None draws fresh seeds from
numpy's global generator.

Training state: `fit` always starts from new weights; `partial_fit` runs one more epoch on the
network it finds, with the optimiser state (Adam's moments, momentum) of the previous calls in
this process. Pickling keeps the weights but not the optimiser state, so `partial_fit` on an
unpickled estimator restarts Adam's moments.

Sample weights: `fit`, `partial_fit` and `score` take `sample_weight`, and the classifier takes
`class_weight` (None, "balanced" or a dict), multiplied into it. A sample of weight 0 is left out
before training, which is scikit-learn's meaning of it; the others reach the library, which
multiplies each sample's loss and gradient by its weight and divides each batch's gradient by the
batch's summed weight, as scikit-learn's MLP does (see Network.fit): weights of 1 train bit for bit
as no weights, and an integer weight k trains as k copies of the sample would in a full batch (to
float rounding).

scikit-learn's estimator checks (`check_estimator`, `parametrize_with_checks`, run by
tests/test_sklearn.py, where an expected failure that passes fails the run): both estimators pass
every check but one, `check_sample_weight_equivalence_on_dense_data`, which scikit-learn's own
SGDClassifier and SGDRegressor list as failing too. It fits once with integer weights and once with
each sample repeated that many times, and compares the predictions to a relative 1e-7. The two fits
compute the same gradients (15 samples weighted against 27 repeated, one full batch each), but in
float32 and summed in another order, and 100 epochs of Adam carry that rounding to about 1e-6 in
the predictions; tests/test_sklearn.py checks the same equivalence to 1e-4, where an error in the
weighting shows as a difference of 1e-2 or more. The other sample_weight checks (pandas Series,
lists, array-likes, shapes, all-zero weights, weights left unchanged, one class left by the weights)
pass. `check_methods_subset_invariance` passes too. That check compares each row's prediction
made alone with the same row's within a batch, to 1e-7, on data of 3 features: networks that small
give the same bits either way. With more features or outputs, the float32 BLAS rounding described
under "Numerics" can make them differ by about one ulp; making every prediction independent of its
batch would mean always handing BLAS blocks of a fixed size (measured: single-row predictions 10 to
20 times slower), a poor trade for a difference within float32 precision. Sparse input
is refused with a TypeError that says so, which is what the sparse checks ask of an estimator
without sparse support. scikit-learn skips two kinds of check unless their dependencies are there:
the pandas ones (they pass with pandas installed) and `check_array_api_input` (it
passes with SCIPY_ARRAY_API=1 set).
"""

import inspect
import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.class_weight import compute_class_weight
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as error:  # not installed, or older than 1.6 (no validate_data)
    raise ImportError("nudge.sklearn needs scikit-learn 1.6 or later: pip install 'scikit-learn>=1.6'") from error

from . import _arrays, _options, _settings
from .history import History
from .network import Network

__all__ = ["NudgeClassifier", "NudgeRegressor"]

#: Rows per call to the library when predicting (see the module docstring).
_HIDDEN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "sigmoid": "sigmoid", "tanh": "tanh",
                       "relu": "relu", "leaky_relu": "leaky_relu"}
_UINT64 = 2**64
_GOLDEN = 0x9E3779B97F4A7C15  # spreads the epoch count over the seed's bits in partial_fit


# The estimators' parameters: every training option of the library's option table (_options.OPTIONS)
# under its keyword, with Network.fit's default and docs, except the few the estimators set
# themselves through parameters named as scikit-learn's MLPClassifier names them.

#: Training options the estimators set themselves: table keyword -> the parameters that stand for it.
SPELLING = {
    "epochs": ("max_epochs",),  # for fit; partial_fit runs one epoch
    "early_stopping": ("early_stopping", "validation_fraction", "patience"),
    "validation_split": ("validation_fraction",),  # held out by the estimator, with early_stopping only
    "seed": ("random_state",),  # which also seeds the initial weights and the validation split
}

#: The estimators' own parameters: name -> (default, numpy-style documentation).
_OWN = {
    "hidden_layer_sizes": ((100,), """int or sequence of int, default=(100,)
        Widths of the hidden layers; () trains a network without hidden layer."""),
    "activation": ("relu", """{"relu", "leaky_relu", "tanh", "sigmoid" (alias "logistic"), "identity"} or list, default="relu"
        Activation of every hidden layer, or one per hidden layer."""),
    "max_epochs": (100, """int >= 1, default=100
        Passes over the training data in `fit` (fewer with early stopping). With batches of 32,
        an epoch is only n_samples / 32 steps: 100 epochs train iris-sized data sets to their
        best; large data sets need far fewer epochs (lower it, or use early_stopping)."""),
    "early_stopping": (False, """bool, default=False
        Hold out `validation_fraction` of the training data (stratified for the classifier when
        every class has enough samples), stop once the validation loss has not improved for
        `patience` epochs, and (with restore_best_weights) keep the weights of the best epoch."""),
    "validation_fraction": (0.1, """float in (0, 1), default=0.1
        Used with early_stopping only."""),
    "patience": (10, """int >= 1, default=10
        Used with early_stopping only."""),
    "random_state": (None, """int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling and the validation split. An int makes `fit`
        reproducible."""),
    "verbose": (False, """bool, default=False
        Show a progress bar per epoch (tqdm when installed). False prints nothing."""),
}

#: Estimator-specific documentation of training options passed to Network.fit by their keyword.
_DOC = {
    "batch_size": """int or "auto", default=32
        Samples per gradient step, 1 to 1048576; "auto" means min(200, n_samples) as in MLPClassifier.""",
}
#: What the estimators add to the documentation of a training option.
_NOTES = {
    "normalize": "partial_fit fits it on its first call only.",
    "schedule": "Each partial_fit call is a training call of one epoch: a schedule or warm-up restarts on every call.",
}

#: The training options passed to Network.fit under their own keyword (with the estimator's value).
PASSED = tuple(option.keyword for option in _options.OPTIONS if option.keyword not in SPELLING)


def _parameter_names():
    """The constructor's keyword-only parameters, in the table's order."""
    names = []
    for option in _options.OPTIONS:
        names += [name for name in SPELLING.get(option.keyword, (option.keyword,)) if name not in names]
    return names + ["verbose"]


#: The classifier's own parameter, after the shared ones: name -> (default, documentation).
_CLASSIFIER_OWN = {
    "class_weight": (None, """None, "balanced" or dict, default=None
        Weights of the classes, multiplied into every sample's weight (and so into sample_weight
        when given): None weighs every class 1; a dict maps a class label to its weight (classes
        not in it weigh 1); "balanced" gives each class n_samples / (n_classes * its count), as
        scikit-learn's compute_class_weight does (counting sample_weight when given), so that
        every class weighs the same in total. partial_fit takes None or a dict only, since its
        batches do not show the class frequencies of the data."""),
}


def _init_signature(extra=()):
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter("self", positional)]
    parameters += [inspect.Parameter(name, positional, default=_OWN[name][0])
                   for name in ("hidden_layer_sizes", "activation")]
    for name in _parameter_names():
        value = _OWN[name][0] if name in _OWN else _settings.default(_options.BY_KEYWORD[name])
        parameters.append(inspect.Parameter(name, keyword, default=value))
    parameters += [inspect.Parameter(name, keyword, default=_CLASSIFIER_OWN[name][0]) for name in extra]
    return inspect.Signature(parameters)


def _parameters_doc(extra=()):
    entries = []
    for name in ["hidden_layer_sizes", "activation"] + _parameter_names():
        if name in _OWN or name in _DOC:
            entries.append(f"    {name} : {_OWN[name][1] if name in _OWN else _DOC[name]}")
        else:
            entries.append(_settings.option_doc(_options.BY_KEYWORD[name], indent="    ", note=_NOTES.get(name, "")))
    entries += [f"    {name} : {_CLASSIFIER_OWN[name][1]}" for name in extra]
    return "\n    Parameters\n    ----------\n" + "\n".join(entries) + "\n"


_INIT_SIGNATURE = _init_signature()
_CLASSIFIER_SIGNATURE = _init_signature(extra=tuple(_CLASSIFIER_OWN))


class _NudgeEstimator(BaseEstimator):
    """What the classifier and the regressor share: the hyper-parameters, their checks, seeding,
    training and blocked prediction. Subclasses say how y becomes the network's targets."""

    _SIGNATURE = _INIT_SIGNATURE

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", **params):
        # Stores every parameter as given (scikit-learn's convention); the signature is the table's.
        try:
            bound = self._SIGNATURE.bind(self, hidden_layer_sizes, activation, **params)
        except TypeError as error:
            raise TypeError(f"{type(self).__name__}() {error}") from None
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    # scikit-learn reads the parameters (get_params, clone, GridSearchCV) from this signature.
    __init__.__signature__ = _INIT_SIGNATURE

    # -- hyper-parameters ------------------------------------------------------------------------

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = [sizes]
        message = f"hidden_layer_sizes must be a sequence of positive ints, got {self.hidden_layer_sizes!r}"
        if isinstance(sizes, str):
            raise ValueError(message)
        try:
            sizes = list(sizes)
        except TypeError:
            raise ValueError(message) from None
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise ValueError(message)
        return [int(s) for s in sizes]

    def _hidden_activations(self, count):
        single = isinstance(self.activation, str)
        names = [self.activation] if single else list(self.activation)
        for name in names:
            if name not in _HIDDEN_ACTIVATIONS:
                raise ValueError(f"activation {name!r} is not one of {', '.join(sorted(_HIDDEN_ACTIVATIONS))}")
        if single:
            names = names * count
        elif len(names) != count:
            raise ValueError(f"activation lists {len(names)} activations but hidden_layer_sizes has {count} layers")
        return [_HIDDEN_ACTIVATIONS[name] for name in names]

    def _check_hyperparameters(self):
        """Raises ValueError for a hyper-parameter out of range; called first by fit and partial_fit.
        The training options are checked as Network.fit checks them, against the option table."""
        def integer(name, low):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")

        def real(name, low, high=None, low_open=False):
            value = getattr(self, name)
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
            ok = ok and (value > low if low_open else value >= low) and (high is None or value < high)
            if not ok:
                bounds = f"{'(' if low_open else '['}{low}, {'inf)' if high is None else f'{high})'}"
                raise ValueError(f"{name} must be a number in {bounds}, got {value!r}")

        sizes = self._hidden_sizes()
        self._hidden_activations(len(sizes))
        integer("max_epochs", 1)
        if self.early_stopping:
            real("validation_fraction", 0, 1, low_open=True)
            integer("patience", 1)
        batch_size = 1 if isinstance(self.batch_size, str) and self.batch_size == "auto" else self.batch_size
        _settings.train_options(self._fit_settings(batch_size=batch_size, epochs=1, seed=0, early_stopping=False),
                                len(sizes) + 2)

    def _fit_settings(self, **own):
        """Network.fit's training options: the parameters of the same names, and `own`, the ones the
        estimator works out (epochs, seed, batch_size, early_stopping)."""
        settings = {option.keyword: _settings.default(option) for option in _options.OPTIONS}
        settings.update({keyword: getattr(self, keyword) for keyword in PASSED})
        settings.update(own)
        return settings

    def _batch_size(self, n_samples):
        if isinstance(self.batch_size, str):
            return max(1, min(200, n_samples))
        return int(self.batch_size)

    def _seeds(self):
        """(network seed, shuffling seed, split seed): 64-bit ints drawn from `random_state`."""
        rng = check_random_state(self.random_state)
        return [int(s) for s in rng.randint(0, _UINT64, size=3, dtype=np.uint64)]

    # -- training ----------------------------------------------------------------------------------

    def _new_network(self, n_outputs, output, seed):
        sizes = self._hidden_sizes()
        return Network([self.n_features_in_] + sizes + [n_outputs], hidden=self._hidden_activations(len(sizes)),
                       output=output, seed=seed)

    def _train(self, X, targets, weights, *, epochs, seed, validation=None, append=False):
        """One Network.fit call with the estimator's settings, recorded in history_ and friends.
        On Ctrl-C the network keeps what it learnt, recorded too, and KeyboardInterrupt propagates."""
        settings = self._fit_settings(epochs=epochs, seed=seed, batch_size=self._batch_size(X.shape[0]),
                                  early_stopping=self.patience if validation is not None else False)
        if append and getattr(self, "history_", None) is not None:
            settings["normalize"] = None  # fitted by the first partial_fit call; later calls keep it
        try:
            history = self.network_.fit(X, targets, sample_weight=weights, validation_data=validation,
                                        verbose=self.verbose, **settings)
        except KeyboardInterrupt:
            if self.network_.history is not None and len(self.network_.history):
                self._record(self.network_.history, append)
            raise
        self._record(history, append)

    def _record(self, history, append):
        """Sets history_, n_iter_, loss_ and loss_curve_ from a run (appended to the previous ones
        for partial_fit)."""
        if append and getattr(self, "history_", None) is not None:
            history = _concatenate(self.history_, history)
        self.history_ = history
        self.n_iter_ = len(history)
        self.loss_curve_ = [float(v) for v in history.train_loss]
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else float("nan")

    def _fit(self, X, targets, weights, n_outputs, output, stratify):
        network_seed, shuffle_seed, split_seed = self._seeds()
        X, targets, weights, stratify = _without_zero_weights(X, targets, weights, stratify)
        validation = None
        if self.early_stopping:
            X, targets, weights, validation = self._split(X, targets, weights, split_seed, stratify)
        self.network_ = self._new_network(n_outputs, output, network_seed)
        self._shuffle_seed = shuffle_seed
        self._train(X, targets, weights, epochs=self.max_epochs, seed=shuffle_seed, validation=validation)
        return self

    def _start_partial(self, n_outputs, output):
        """The first partial_fit call on an unfitted estimator: a new network, no history yet."""
        network_seed, shuffle_seed, _ = self._seeds()
        self._shuffle_seed = shuffle_seed
        self.network_ = self._new_network(n_outputs, output, network_seed)
        self.history_ = None
        self.n_iter_ = 0

    def _split(self, X, targets, weights, seed, stratify):
        n = X.shape[0]
        n_val = int(np.ceil(self.validation_fraction * n))
        if n_val < 1 or n - n_val < 1:
            raise ValueError(f"early_stopping with validation_fraction={self.validation_fraction} cannot split "
                             f"{n} samples into a training and a validation set; give more samples or turn "
                             "early_stopping off")
        if stratify is not None:
            counts = np.bincount(stratify)
            if counts.min() < 2 or n_val < len(counts) or n - n_val < len(counts):
                stratify = None  # too few samples per class to stratify: plain random split
        arrays = (X, targets) if weights is None else (X, targets, weights)
        parts = [np.ascontiguousarray(part) for part in train_test_split(*arrays, test_size=n_val,
                                                                         random_state=seed % 2**32, stratify=stratify)]
        if weights is None:
            return parts[0], parts[2], None, (parts[1], parts[3])
        # Every weight is above 0 here (_without_zero_weights came first), so both sides have weight.
        return parts[0], parts[2], parts[4], (parts[1], parts[3], parts[5])

    def _partial_fit(self, X, targets, weights):
        """One epoch on (X, targets) with the network's optimiser state (no early stopping)."""
        seed = (self._shuffle_seed + _GOLDEN * getattr(self, "n_iter_", 0)) % _UINT64
        X, targets, weights, _ = _without_zero_weights(X, targets, weights, None)
        self._train(X, targets, weights, epochs=1, seed=seed, append=True)
        return self

    # -- prediction --------------------------------------------------------------------------------

    def _outputs(self, X):
        """The network's outputs for X as float64 (n, n_outputs_)."""
        check_is_fitted(self)
        X = validate_data(self, _mapped(X), reset=False, dtype=np.float32, order="C")
        return self.network_.predict(X).astype(np.float64)


_PARAMETERS_DOC = _parameters_doc()

_ATTRIBUTES_DOC = """
    network_ : nudge.Network
        The trained network (save it with `network_.save(path)`).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Set when X has string column names (e.g. a pandas DataFrame).
    n_outputs_ : int
        Output units of the network.
    history_ : nudge.History
        Per-epoch training (and with early stopping, validation) loss and accuracy since the last
        `fit`; `partial_fit` appends its epoch.
    n_iter_ : int
        Epochs run since the last `fit`.
    loss_ : float
        Training loss of the last epoch (mean over the epoch's batches).
    loss_curve_ : list of float
        Training loss of every epoch, as in history_.train_loss.
"""


class NudgeClassifier(ClassifierMixin, _NudgeEstimator):
    __doc__ = """A multilayer perceptron classifier trained by libnudge: softmax outputs, one per
    class (also for two classes), and cross-entropy loss.

    Labels may be any sortable values (ints, strings, ...); they are mapped to 0..k-1 in the order
    of `classes_`. At least two classes are needed.
    """ + _parameters_doc(extra=tuple(_CLASSIFIER_OWN)) + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.""" + _ATTRIBUTES_DOC + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = load_iris(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), NudgeClassifier(random_state=0)).fit(X, y)
    >>> model.score(X, y) > 0.9
    True
    """

    _SIGNATURE = _CLASSIFIER_SIGNATURE

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", **params):
        super().__init__(hidden_layer_sizes, activation, **params)

    __init__.__signature__ = _CLASSIFIER_SIGNATURE

    def fit(self, X, y, sample_weight=None):
        """Trains a new network on X (n_samples, n_features) and labels y (n_samples,), each sample
        weighted by sample_weight (n_samples,) when given, times its class's weight (class_weight).
        A sample of weight 0 is left out; see nudge.Network.fit for what the weights do. Returns self."""
        self._check_hyperparameters()
        X, y = validate_data(self, _mapped(X), y, dtype=np.float32, order="C")
        check_classification_targets(y)
        sample_weight = _sample_weight(sample_weight, X)
        classes, labels = np.unique(y, return_inverse=True)
        _require_two_classes(classes)
        self.classes_ = classes
        self.n_outputs_ = len(classes)
        labels = labels.reshape(-1).astype(np.int32)
        weights = self._class_weighted(y, labels, sample_weight, partial=False)
        return self._fit(X, labels, weights, len(classes), "softmax", stratify=labels)

    def _class_weighted(self, y, labels, sample_weight, partial):
        """Each sample's weight: sample_weight (or 1) times its class's weight; None when both are
        absent, so that unweighted training stays the library's unweighted path."""
        if self.class_weight is None and sample_weight is None:
            return None
        if partial and isinstance(self.class_weight, str):
            raise ValueError(f"class_weight={self.class_weight!r} is not supported by partial_fit (a batch does not "
                             "show the class frequencies of the data); give a dict, or use fit")
        if self.class_weight is not None and not (isinstance(self.class_weight, dict) or self.class_weight == "balanced"):
            raise ValueError(f'class_weight must be None, "balanced" or a dict, got {self.class_weight!r}')
        weights = np.ones(len(labels), dtype=np.float32) if sample_weight is None else sample_weight
        if self.class_weight is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                per_class = np.asarray(compute_class_weight(self.class_weight, classes=self.classes_, y=y,
                                                            sample_weight=sample_weight), dtype=np.float64)
            if isinstance(self.class_weight, str):
                per_class[~np.isfinite(per_class)] = 0  # a class whose samples all weigh 0: none to balance
            if not (np.isfinite(per_class).all() and (per_class >= 0).all()):
                raise ValueError(f"class_weight gives the weights {per_class!r}; each must be finite and 0 or more")
            weights = (weights * per_class[labels]).astype(np.float32)
        if not weights.any():
            raise ValueError("the sample weights times the class weights are all zero; at least one sample needs a "
                             "weight above zero")
        if not partial:  # a partial_fit batch may hold one class only
            _require_two_classes(self.classes_[np.unique(labels[weights > 0])], weighted=True)
        return weights

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of training on (X, y), going on from the current network and optimiser state
        (Adam's moments, momentum). The first call (on an unfitted estimator) builds the network
        and needs `classes`, every label that will ever appear; later calls may omit it. Epochs
        of partial_fit use no early stopping. sample_weight and class_weight (None or a dict)
        weigh the samples as in fit. Returns self."""
        first = not hasattr(self, "network_")
        self._check_hyperparameters()
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        X, y = validate_data(self, _mapped(X), y, dtype=np.float32, order="C", reset=first)
        check_classification_targets(y)
        sample_weight = _sample_weight(sample_weight, X)
        if first:
            all_classes = np.unique(np.asarray(classes))
            _require_two_classes(all_classes)
            self.classes_ = all_classes
            self.n_outputs_ = len(all_classes)
            self._start_partial(len(all_classes), "softmax")
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"classes={classes!r} differs from the classes of the first call: {self.classes_!r}")
        labels = self._encode(y)
        return self._partial_fit(X, labels, self._class_weighted(y, labels, sample_weight, partial=True))

    def _encode(self, y):
        index = np.searchsorted(self.classes_, y)
        index[index >= len(self.classes_)] = 0
        unknown = self.classes_[index] != y
        if np.any(unknown):
            raise ValueError(f"y holds labels that are not in classes_: {np.unique(y[unknown])!r}")
        return index.astype(np.int32)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns in the order of `classes_`."""
        probabilities = self._outputs(X)
        probabilities /= probabilities.sum(axis=1, keepdims=True)  # exact sums despite float32 softmax
        return probabilities

    def predict_log_proba(self, X):
        """The logarithm of predict_proba (-inf where a probability underflowed to 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample."""
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]


class NudgeRegressor(RegressorMixin, _NudgeEstimator):
    __doc__ = """A multilayer perceptron regressor trained by libnudge: identity outputs and mean
    squared error, one output per target (y may be (n_samples,) or (n_samples, n_targets)).

    Neither X nor y is scaled: use a `StandardScaler` in a `Pipeline` for X, and
    `TransformedTargetRegressor(transformer=StandardScaler())` when y is far from unit scale.
    """ + _PARAMETERS_DOC + """
    Attributes
    ----------""" + _ATTRIBUTES_DOC + """
    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = make_regression(n_samples=500, n_features=5, noise=1.0, random_state=0)
    >>> model = make_pipeline(StandardScaler(), NudgeRegressor(random_state=0))
    >>> model.fit(X, y / y.std()).score(X, y / y.std()) > 0.9
    True
    """

    def fit(self, X, y, sample_weight=None):
        """Trains a new network on X (n_samples, n_features) and targets y (n_samples,) or
        (n_samples, n_targets), each sample weighted by sample_weight (n_samples,) when given (a
        sample of weight 0 is left out; see nudge.Network.fit). Returns self."""
        self._check_hyperparameters()
        X, y = validate_data(self, _mapped(X), y, dtype=np.float32, order="C", multi_output=True, y_numeric=True)
        sample_weight = _sample_weight(sample_weight, X)
        self._y_ndim = y.ndim
        targets = _target_matrix(y)
        self.n_outputs_ = targets.shape[1]
        return self._fit(X, targets, sample_weight, targets.shape[1], "identity", stratify=None)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch of training on (X, y), going on from the current network and optimiser state;
        the first call (on an unfitted estimator) builds the network. No early stopping.
        sample_weight weighs the samples as in fit. Returns self."""
        first = not hasattr(self, "network_")
        self._check_hyperparameters()
        X, y = validate_data(self, _mapped(X), y, dtype=np.float32, order="C", multi_output=True, y_numeric=True,
                             reset=first)
        sample_weight = _sample_weight(sample_weight, X)
        targets = _target_matrix(y)
        if first:
            self._y_ndim = y.ndim
            self.n_outputs_ = targets.shape[1]
            self._start_partial(targets.shape[1], "identity")
        elif targets.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {targets.shape[1]} targets but the regressor was fitted with {self.n_outputs_}")
        return self._partial_fit(X, targets, sample_weight)

    def predict(self, X):
        """Predicted targets: (n_samples,) when fitted on a 1-D y, else (n_samples, n_targets)."""
        outputs = self._outputs(X)
        return outputs.ravel() if self._y_ndim == 1 else outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _require_two_classes(classes, weighted=False):
    if len(classes) < 2:
        where = "y has" if not weighted else "the samples with a weight above zero have"
        raise ValueError(f"NudgeClassifier needs at least 2 classes to train, but {where} {len(classes)} class: "
                         f"{classes!r}")


def _sample_weight(sample_weight, X):
    """scikit-learn's checks of sample_weight (one finite value of 0 or more per sample, not all 0) and
    its conversion to C-contiguous float32 (none when it already is one); None stays None."""
    if sample_weight is None:
        return None
    return _check_sample_weight(sample_weight, X, dtype=np.float32, ensure_non_negative=True)


def _without_zero_weights(X, targets, weights, stratify):
    """The samples whose weight is above 0 (all of them, without weights): scikit-learn's meaning of a
    zero weight is a sample left out, which is then exact whatever the batches."""
    if weights is None or weights.all():
        return X, targets, weights, stratify
    keep = weights > 0
    return X[keep], targets[keep], weights[keep], None if stratify is None else stratify[keep]


def _mapped(X):
    """X as given. A memory-mapped X (np.memmap, np.load(path, mmap_mode="r")) that is C-contiguous
    float32 goes to the library without a copy; one that validate_data would convert is refused above
    nudge._arrays.FILE_COPY_LIMIT, as Network.fit refuses it, rather than copied whole into memory."""
    if isinstance(X, np.ndarray):
        _arrays.check_file_copy(X, np.float32, "X")
    return X


def _target_matrix(y):
    """y as a C-contiguous float32 (n_samples, n_targets) array; finite, as the library requires."""
    targets = np.ascontiguousarray(y.reshape(y.shape[0], -1), dtype=np.float32)
    if not _arrays.all_finite(targets):
        raise ValueError("y holds values that are infinite or too large for float32")
    return targets


def _concatenate(first, second):
    """One History with the epochs of `first` followed by those of `second`, renumbered."""
    merged = History()
    offset = len(first)
    merged.epoch = list(first.epoch) + [offset + e for e in second.epoch]
    for name in History.METRICS:
        setattr(merged, name, list(getattr(first, name)) + list(getattr(second, name)))
    merged.stop_reason = second.stop_reason
    merged.best_epoch = offset + second.best_epoch if second.best_epoch else first.best_epoch
    merged.message = second.message
    return merged
