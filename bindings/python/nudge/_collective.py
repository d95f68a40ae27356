"""fit(comm=...): data-parallel training across the processes of an mpi4py communicator.

The library does the training (nudge_trainer_set_collective): it sums every step's gradient through
the allreduce callback defined here, which hands a zero-copy numpy view of its buffer to
comm.Allreduce. This module adds what Python must do around the C call: every check that can fail on
one rank only (a bad array, an option, a damaged checkpoint copy) is followed by an agreement, so that
every rank raises (the failing rank its own error, the others a CollectiveError naming it) instead of
leaving the others waiting in a collective call that one rank never makes. (An MPI call that fails
on one rank only, inside a sum the others have entered, is MPI's to handle: by default it aborts
the job.)

mpi4py is imported only when a communicator is given (`pip install nudge[mpi]`)."""

import contextlib
import ctypes
import os
import tempfile

import numpy as np

from . import _lib, _options
from ._errors import CollectiveError, InvalidArgumentError, check


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError("fit(comm=...) needs mpi4py: pip install nudge[mpi] (or pip install mpi4py), with an "
                          "MPI implementation such as Open MPI") from error
    return MPI


def layout(data):
    """The C code of fit's `data` keyword."""
    if not isinstance(data, str) or data not in _lib.DATA_LAYOUTS:
        raise InvalidArgumentError(f"data {data!r} is not one of {', '.join(sorted(_lib.DATA_LAYOUTS))}")
    return _lib.DATA_LAYOUTS[data]


def check_data(data, group):
    """fit's `data` keyword: one of the layouts, and "sharded" only with a communicator."""
    if layout(data) != _lib.DATA_LAYOUTS["replicated"] and group is None:
        raise InvalidArgumentError(f"data={data!r} needs comm, the communicator whose ranks hold the shards")


def shared(settings, kind, sample_count):
    """What every rank's fit call must have alike (name -> its text): the training options and fit's
    keywords that steer the run, the form of y, and with replicated data the sample count."""
    values = {option.keyword: repr(settings[option.keyword]) for option in _options.OPTIONS}
    values.update({name: repr(settings[name]) for name in ("checkpoint_every", "resume", "data")})
    values["y"] = "class labels" if kind == "labels" else "target rows"
    validation = settings["validation_data"]
    values["validation_data"] = ("None" if validation is None else
                                 "given with weights" if len(validation) == 3 and validation[2] is not None else "given")
    values["sample_weight"] = "None" if settings["sample_weight"] is None else "given"
    if settings["data"] == "replicated":
        values["the sample count of X (replicated data)"] = str(sample_count)
    return values


def agreement(group):
    """A context for a step that may fail on some ranks only: on leaving it, every rank learns which
    failed, and all raise. Without a group (no comm), a plain context."""
    return contextlib.nullcontext() if group is None else group.agreement()


class Group:
    """One fit call's side of the communicator: its rank and size, the allreduce callback the library
    calls (and the exception it raised, kept to be re-raised once the C call returns)."""

    def __init__(self, comm):
        self.MPI = _mpi()
        if not isinstance(comm, self.MPI.Intracomm):
            raise TypeError(f"comm is a {type(comm).__name__}; expected an mpi4py intracommunicator such as "
                            "MPI.COMM_WORLD")
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.pending = []
        # Kept on the object: the library calls it for as long as it is attached to the trainer.
        self._callback = _lib.nudge_allreduce_fn(self._allreduce)

    @classmethod
    def of(cls, comm):
        return None if comm is None else cls(comm)

    # -- the library's allreduce --------------------------------------------------------------------------

    def _allreduce(self, buffer, count, _context):
        try:
            if count:  # every rank passes the same count, so every rank skips an empty sum alike
                view = np.ctypeslib.as_array(buffer, shape=(count,))
                self.comm.Allreduce(self.MPI.IN_PLACE, view, op=self.MPI.SUM)
            return 0
        except BaseException as error:  # noqa: BLE001 - carried across the C call, re-raised by failure()
            self.pending.append(error)
            return 1

    def attach(self, trainer, data):
        """Makes the trainer's training calls data-parallel over this group, with `data` ("replicated"
        or "sharded") saying what each rank passes."""
        collective = _lib.nudge_collective()
        check(_lib.lib.nudge_collective_init(ctypes.byref(collective), ctypes.sizeof(collective)))
        collective.rank, collective.size, collective.data = self.rank, self.size, layout(data)
        collective.allreduce = self._callback
        check(_lib.lib.nudge_trainer_set_collective(trainer, ctypes.byref(collective)))

    @staticmethod
    def detach(trainer):
        check(_lib.lib.nudge_trainer_set_collective(trainer, None))

    def failure(self, error):
        """What a failed training call raises: the exception the allreduce callback met (mpi4py's),
        else the library's error."""
        return self.pending[0] if self.pending else error

    # -- agreeing on failures ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def agreement(self):
        try:
            yield
        except BaseException as error:
            self._agree(error)
            raise
        self._agree(None)

    def _agree(self, error):
        """Tells every rank which ranks failed; raises CollectiveError on a rank that did not."""
        reports = self.comm.allgather(None if error is None else f"{type(error).__name__}: {error}")
        failed = [rank for rank, report in enumerate(reports) if report is not None]
        if failed and error is None:
            raise CollectiveError("; ".join(f"rank {rank} of {self.size} failed: {reports[rank]}" for rank in failed),
                                  ranks=failed)

    def check_same(self, what, values):
        """Raises InvalidArgumentError on every rank when any of `values` (name -> text) differs from rank
        0's, naming each such value and the ranks."""
        every = self.comm.allgather(values)
        differences = []
        for name, value in every[0].items():
            others = [f"{every[rank].get(name)} on rank {rank}" for rank in range(1, self.size)
                      if every[rank].get(name) != value]
            if others:
                differences.append(f"{name} is {value} on rank 0 but {', '.join(others)}")
        if differences:
            raise InvalidArgumentError(f"fit was called with different {what} on the ranks of comm: "
                                       + "; ".join(differences) + ". Every rank must pass the same.")

    # -- a checkpoint read by rank 0 -------------------------------------------------------------------------

    def root_file(self, path, load, release):
        """What `load` makes of rank 0's file at `path` (None on every rank when rank 0 has no such file),
        on every rank: rank 0 reads the file and broadcasts its bytes; it loads `path` itself, the others
        a temporary copy. A failure on any rank raises on all; `release` frees what the others loaded."""
        data = None
        with self.agreement():
            if self.rank == 0:
                try:
                    with open(path, "rb") as file:
                        data = file.read()
                except FileNotFoundError:
                    pass
        data = self.comm.bcast(data, root=0)
        result = None
        try:
            with self.agreement():
                if data is not None:
                    result = load(path) if self.rank == 0 else _load_copy(data, load)
        except BaseException:
            if result is not None:
                release(result)
            raise
        return result


def _load_copy(data, load):
    descriptor, copy = tempfile.mkstemp(prefix="nudge-checkpoint-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        return load(copy)
    finally:
        os.unlink(copy)
