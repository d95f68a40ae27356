"""Checkpoints: a trainer's whole state (network, options, optimiser state, random state, position in
the run, epoch reports so far) in a model file, which nudge_load still reads as a plain network.
Network.save_checkpoint/load_checkpoint and fit's checkpoint, checkpoint_every and resume keywords
are built on these."""

import collections
import ctypes

from . import _arrays, _checks, _lib
from ._errors import InvalidArgumentError, check

#: Where a trainer's loaded run stands (nudge_trainer_position): `in_run` when the trainer holds a run
#: loaded from a checkpoint that its next fit continues, `finished` when that run had ended (the next
#: fit only reports it), `epochs_done` and `steps` how far it had got.
TrainingPosition = collections.namedtuple("TrainingPosition", "in_run finished epochs_done steps")


def keywords(settings):
    """fit's checkpoint keywords, checked: (the path or None, checkpoint_every as an int)."""
    path, resume = settings["checkpoint"], settings["resume"]
    every = _checks.whole_number(settings["checkpoint_every"], "checkpoint_every", 0, 2**64 - 1)  # a uint64_t
    if path is None:
        if every:
            raise InvalidArgumentError(f"checkpoint_every is {every} but there is no checkpoint: give checkpoint=PATH")
        if resume:
            raise InvalidArgumentError("resume=True needs checkpoint=PATH, the file to resume from")
        return None, every
    _arrays.c_path(path, "checkpoint")
    return path, every


def load(path):
    """A trainer (and its network) from the checkpoint at `path`; the caller frees it."""
    trainer = ctypes.POINTER(_lib.nudge_trainer)()
    check(_lib.lib.nudge_trainer_load(_arrays.c_path(path, "checkpoint"), ctypes.byref(trainer)))
    return trainer


def network_of(trainer):
    """A new handle on the trainer's network; the caller frees it."""
    handle = ctypes.POINTER(_lib.nudge_network)()
    check(_lib.lib.nudge_trainer_get_network(trainer, ctypes.byref(handle)))
    return handle


def save(trainer, path):
    check(_lib.lib.nudge_trainer_save(trainer, _arrays.c_path(path, "path")))


def position(trainer):
    out = _lib.nudge_trainer_position()
    out.struct_size = ctypes.sizeof(out)
    check(_lib.lib.nudge_trainer_get_position(trainer, ctypes.byref(out)))
    return TrainingPosition(bool(out.in_run), bool(out.finished), int(out.epochs_done), int(out.steps))


def attach(trainer, path, every):
    """The trainer writes its checkpoint to `path` during its training calls (every `every` steps, at each
    epoch end and when the call ends)."""
    check(_lib.lib.nudge_trainer_set_checkpoint(trainer, _arrays.c_path(path, "checkpoint"), every))


def detach(trainer):
    _lib.lib.nudge_trainer_set_checkpoint(trainer, None, 0)


def architecture(network):
    """A network's layers as messages show them: "4-16-3 (relu, softmax)"."""
    return f"{'-'.join(str(s) for s in network.layer_sizes)} ({', '.join(network.activations)})"
