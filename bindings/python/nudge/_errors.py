"""Every non-OK status becomes one of these exceptions, with the library's own message."""

from . import _lib


class NudgeError(Exception):
    """Base class of every error the library reports. `status` is the C status code and
    `status_name` its name, such as "invalid_argument"."""

    #: The status an error raised by the Python layer itself (not by a C call) reports.
    default_status = _lib.ERR_INTERNAL

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = type(self).default_status if status is None else status
        self.status_name = _lib.lib.nudge_status_name(self.status).decode()


class InvalidArgumentError(NudgeError, ValueError):
    """An argument is out of range or not one of the known values."""
    default_status = _lib.ERR_INVALID_ARGUMENT


class ShapeError(NudgeError, ValueError):
    """Array shapes disagree with each other or with the network."""
    default_status = _lib.ERR_SHAPE


class NudgeMemoryError(NudgeError, MemoryError):
    """The library could not allocate memory, or the request exceeds its limits."""
    default_status = _lib.ERR_OUT_OF_MEMORY


class NudgeIOError(NudgeError, OSError):
    """A file could not be opened, read, written or renamed."""
    default_status = _lib.ERR_IO


class FormatError(NudgeError, ValueError):
    """A file or buffer is not a valid model or data file."""
    default_status = _lib.ERR_FORMAT


class VersionError(FormatError):
    """A model file was written by a newer version of the library."""
    default_status = _lib.ERR_VERSION


class NotFiniteError(NudgeError, ArithmeticError):
    """A value that must be finite is NaN or infinite: inputs, targets, or a diverging loss."""
    default_status = _lib.ERR_NOT_FINITE


class CancelledError(NudgeError):
    """Training was stopped by a callback."""
    default_status = _lib.ERR_CANCELLED


class NotFoundError(NudgeError, KeyError):
    """The requested item, such as a metadata key, does not exist."""
    default_status = _lib.ERR_NOT_FOUND

    def __str__(self):  # KeyError would print the message with quotes around it
        return Exception.__str__(self)


class CollectiveError(NudgeError, RuntimeError):
    """Data-parallel training failed on another process of the group, or its allreduce failed. The
    message names the rank that failed and what went wrong there; that rank raises its own error.
    `ranks` lists the failing ranks when the Python layer detected the failure (its argument checks),
    and is empty when the library reported it."""
    default_status = _lib.ERR_COLLECTIVE

    def __init__(self, message, status=None, ranks=()):
        super().__init__(message, status)
        self.ranks = tuple(ranks)


_BY_STATUS = {
    _lib.ERR_INVALID_ARGUMENT: InvalidArgumentError,
    _lib.ERR_SHAPE: ShapeError,
    _lib.ERR_CAPACITY: ShapeError,
    _lib.ERR_OUT_OF_MEMORY: NudgeMemoryError,
    _lib.ERR_IO: NudgeIOError,
    _lib.ERR_FORMAT: FormatError,
    _lib.ERR_VERSION: VersionError,
    _lib.ERR_NOT_FINITE: NotFiniteError,
    _lib.ERR_CANCELLED: CancelledError,
    _lib.ERR_NOT_FOUND: NotFoundError,
    _lib.ERR_COLLECTIVE: CollectiveError,
}


def error_for(status, reword=None):
    """The exception for a failed call, with the message read now, on the calling thread. `reword`,
    when given, turns the library's message into the caller's words (see network._python_words)."""
    message = _lib.lib.nudge_last_error().decode("utf-8", "replace")
    if reword is not None:
        message = reword(message)
    return _BY_STATUS.get(status, NudgeError)(message, status)


def check(status, reword=None):
    """Raises the matching exception unless `status` is OK."""
    if status != _lib.OK:
        raise error_for(status, reword)
