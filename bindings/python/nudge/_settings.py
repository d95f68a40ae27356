"""fit's training options on the Python side, read from the option table (_options.py, generated from
Sources/nudge-options/Table.swift): the keywords, defaults and documentation `Network.fit` offers,
and their conversion into a nudge_train_options, checked with the Python keyword in every message.

The table marks a few options as converted by hand (`generated` False); CUSTOM below says how fit
spells, defaults and documents each, and `_custom_fields` converts them."""

import ctypes
import inspect
import re
import textwrap

import numpy as np

from . import _arrays, _checks, _lib, _options
from ._errors import InvalidArgumentError, check

OPTION = _options.BY_KEYWORD

#: The options fit converts by hand: keyword -> (fit's default, type, documentation). "{range}" in a
#: documentation stands for the table's range; the table's own doc is in C's terms.
CUSTOM = {
    "early_stopping": (
        False, "bool or int",
        "False never stops early; True stops after 5 epochs without improvement of the monitored loss, an "
        "int after that many (0: never). The monitored loss is the validation loss, or the training loss "
        "without validation data; restore_best_weights then ends with the best epoch's weights."),
    "learning_rate": (
        None, "float or None",
        "Step size, {range}; None means 0.001 for Adam and 0.01 for the other optimizers."),
    "dropout": (
        None, "float, list of float or None",
        "A rate for every hidden layer (the inputs keep theirs), or a list with one rate for the inputs "
        "and one per hidden layer; each rate {range}. Units are dropped in training only, never in "
        "predict, evaluate or validation."),
    "normalize": (
        None, '{"global", "per_feature"} or None',
        'None keeps the network\'s input normalisation; "global" (one mean and deviation: images) or '
        '"per_feature" (one per input: tables) fits offset and scale on the training samples (not the '
        "held-out validation split) first. They are saved with the model and applied by predict, so raw "
        "inputs (pixels 0..255) can be given everywhere."),
}

#: fit's keywords that are not training options: (name, default, type, documentation).
FIT_ARGUMENTS = (
    ("sample_weight", None, "array-like of shape (n,) or None",
     "One weight per sample (finite, 0 or more, not all 0); None weighs every sample 1. Each sample's loss and "
     "gradient are multiplied by its weight and each batch's gradient is divided by the batch's summed weight "
     "(scikit-learn's MLP convention): weights of 1 train exactly as None, scaling every weight by one factor "
     "changes nothing, a batch whose weights are all 0 is skipped. The History's training loss and accuracy are "
     "weighted means; samples held out by validation_split keep their weights; normalize fits on the samples "
     "without their weights. Passed without a copy when float32 and contiguous."),
    ("validation_data", None, "(X_val, y_val), (X_val, y_val, w_val) or None",
     "Data to validate on after every epoch, instead of a validation_split; y_val in the form of y; w_val, one "
     "weight per validation sample, makes the validation loss and accuracy (and early stopping) weighted."),
    ("verbose", True, "bool", "Show a progress bar per epoch (tqdm when installed); False prints nothing."),
    ("checkpoint", None, "str, os.PathLike or None",
     "A file the library writes the whole training state to (network, optimiser state, random state, position "
     "in the run, epochs so far), atomically, every checkpoint_every steps and when fit ends. Network.load reads "
     "it as a plain network; Network.load_checkpoint and resume=True continue from it."),
    ("checkpoint_every", 0, "int",
     "Steps (batches) between two checkpoints; 0 writes one at the end of each epoch only."),
    ("resume", False, "bool",
     "With a checkpoint that exists: load it (this Network then holds its network and training state, also "
     "when fit goes on to fail; the architecture must be this Network's) and continue that run where it "
     "stopped, ending bit-identical to an uninterrupted run, or return at once if it had finished. Give the "
     "data and options of that run (other options raise InvalidArgumentError naming them). With none there "
     "yet, start afresh. A damaged checkpoint raises FormatError, and changes nothing: it is never replaced "
     "by a new run."),
    ("comm", None, "mpi4py communicator or None",
     "Train data-parallel across the processes of this communicator (`pip install nudge[mpi]`): every rank "
     "calls fit with the same options; the gradients of every step are summed, so each rank ends with the same "
     "weights and History, and N ranks give the run of one process to float rounding. batch_size is the global "
     "batch (across all ranks); only rank 0 shows progress and writes the checkpoint. An error on one rank is "
     "raised on every rank: that rank's own, a CollectiveError naming it on the others."),
    ("data", "replicated", '{"replicated", "sharded"}',
     'With comm: "replicated" when every rank passes the same full X and y (each computes its part of every '
     'batch), "sharded" when each rank passes its own samples (the data set is the shards in rank order; they '
     "may differ in size). validation_data follows the same layout: the same on every rank, or each rank's "
     "part (given on every rank or on none)."),
)

_KINDS = {"count": "int", "seed": "int", "flag": "bool", "float": "float", "double": "float",
          "floats": "list of float"}


def default(option):
    """fit's default for a training option."""
    return option.default if option.generated else CUSTOM[option.keyword][0]


def _signature():
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter(name, positional) for name in ("self", "X", "y")]
    parameters += [inspect.Parameter(option.keyword, keyword, default=default(option)) for option in _options.OPTIONS]
    parameters += [inspect.Parameter(name, keyword, default=value) for name, value, _, _ in FIT_ARGUMENTS]
    return inspect.Signature(parameters)


#: Network.fit(self, X, y, *, <every option of the table>, validation_data=None, verbose=True).
FIT_SIGNATURE = _signature()


def bind(network, X, y, keywords):
    """fit's arguments by name, every keyword present (defaults filled in); TypeError for an unknown one."""
    try:
        bound = FIT_SIGNATURE.bind(network, X, y, **keywords)
    except TypeError as error:
        raise TypeError(f"fit() {error}") from None
    bound.apply_defaults()
    return bound.arguments


# -- documentation ----------------------------------------------------------------------------------------

def _type_text(option):
    if option.kind == "choice":
        return "{" + ", ".join(f'"{name}"' for name in _options.CHOICES[option.choices]) + "}"
    return _KINDS[option.kind]


def _entry(name, type_text, value, text, indent):
    lines = [f"{indent}{name} : {type_text}, default={value!r}"]
    lines += textwrap.wrap(text, 100, initial_indent=indent + "    ", subsequent_indent=indent + "    ")
    return "\n".join(lines)


def option_doc(option, indent="", note=""):
    """One option as a numpy-style parameter entry: its type, fit's default, the table's doc (or fit's
    own for the options it converts by hand), the range, and `note`."""
    range_text = _checks.requirement(option)
    if option.generated:
        type_text, text = _type_text(option), option.doc
        if range_text:
            text += f" Must be {range_text}."
    else:
        _, type_text, text = CUSTOM[option.keyword]
        text = text.replace("{range}", f"must be {range_text}")
    return _entry(option.keyword, type_text, default(option), f"{text} {note}".strip(), indent)


def fit_doc(head, tail, indent="        "):
    """fit's docstring: `head`, the training options from the table, fit's other keywords, `tail`."""
    options = "\n".join(option_doc(option, indent=indent) for option in _options.OPTIONS)
    others = "\n".join(_entry(name, type_text, value, text, indent) for name, value, type_text, text in FIT_ARGUMENTS)
    return (f"{head.rstrip()}\n\n{indent}Training options (the library's option table, docs/OPTIONS.md)\n"
            f"{indent}{'-' * 62}\n{options}\n\n{indent}Other keywords\n{indent}--------------\n{others}\n\n{tail}")


# -- conversion --------------------------------------------------------------------------------------------

def new_options():
    """A nudge_train_options holding the library's defaults."""
    options = _lib.nudge_train_options()
    check(_lib.lib.nudge_train_options_init(ctypes.byref(options), ctypes.sizeof(options)))
    return options


def train_options(settings, layer_count):
    """A nudge_train_options for fit's `settings` (keyword -> value, every training option), for a
    network of `layer_count` layers (the input counted), each value checked against the option table
    before any C call; and the dropout array it points into (keep it alive while the struct is in use)."""
    options = new_options()
    custom = _custom_fields(settings)
    for keyword, value in custom.items():
        setattr(options, OPTION[keyword].field, value)
    _checks.set_fields(options, {**settings, **custom})
    rates = _dropout_rates(settings["dropout"], layer_count)
    if rates is not None:
        options.dropout = _arrays.float_pointer(rates)
        options.dropout_count = rates.shape[0]
    return options, rates


def _default_learning_rate(optimizer):
    return OPTION["learning_rate"].default if optimizer == "adam" else 0.01


def _custom_fields(settings):
    """The C values of the options fit converts by hand, but dropout: keyword -> value, checked."""
    optimizer = settings["optimizer"]
    _checks.convert(OPTION["optimizer"], optimizer, {})  # first: the default learning rate depends on it
    rate, stopping, normalize = settings["learning_rate"], settings["early_stopping"], settings["normalize"]
    in_table_terms = {
        "learning_rate": _default_learning_rate(optimizer) if rate is None else rate,
        "early_stopping": 5 if stopping is True else (stopping or 0),
        "normalize": "none" if normalize is None else normalize,
    }
    return {keyword: _checks.convert(OPTION[keyword], value, {}) for keyword, value in in_table_terms.items()}


def _dropout_rates(dropout, layer_count):
    """The C options' dropout array: None, or one rate for the inputs and one per hidden layer."""
    if dropout is None:
        return None
    layers = layer_count - 1
    if np.isscalar(dropout):
        rates = [0.0] + [dropout] * (layers - 1)
    else:
        rates = list(dropout)
        if len(rates) != layers:
            raise InvalidArgumentError(
                f"dropout has {len(rates)} rates; this network needs {layers} (the inputs and each hidden layer)")
    return np.array(_checks.convert(OPTION["dropout"], rates, {}), dtype=np.float32)


_KEYWORD_OF_FIELD = {option.field: option.keyword for option in _options.OPTIONS}


def python_words(message):
    """A library message with each training option named by its Python keyword, as a safety net for
    the checks that depend on the data (options->validation_fraction -> validation_split)."""
    return re.sub(r"options->(\w+)", lambda match: _KEYWORD_OF_FIELD.get(match.group(1), match.group(0)), message)
