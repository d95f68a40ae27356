"""Every non-OK status becomes one of these exceptions, with the library's own message."""

from . import _lib


class NudgeError(Exception):
    """Base class of every error the library reports. `status` is the C status code and
    `status_name` its name, such as "invalid_argument"."""

    def __init__(self, message, status=_lib.ERR_INTERNAL):
        super().__init__(message)
        self.status = status
        self.status_name = _lib.lib.nudge_status_name(status).decode()


class InvalidArgumentError(NudgeError, ValueError):
    """An argument is out of range or not one of the known values."""


class ShapeError(NudgeError, ValueError):
    """Array shapes disagree with each other or with the network."""


class NudgeMemoryError(NudgeError, MemoryError):
    """The library could not allocate memory, or the request exceeds its limits."""


class NudgeIOError(NudgeError, OSError):
    """A file could not be opened, read, written or renamed."""


class FormatError(NudgeError, ValueError):
    """A file or buffer is not a valid model or data file."""


class VersionError(FormatError):
    """A model file was written by a newer version of the library."""


class NotFiniteError(NudgeError, ArithmeticError):
    """A value that must be finite is NaN or infinite: inputs, targets, or a diverging loss."""


class CancelledError(NudgeError):
    """Training was stopped by a callback."""


class NotFoundError(NudgeError, KeyError):
    """The requested item, such as a metadata key, does not exist."""

    def __str__(self):  # KeyError would print the message with quotes around it
        return Exception.__str__(self)


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
}


def error_for(status):
    """The exception for a failed call, with the message read now, on the calling thread."""
    message = _lib.lib.nudge_last_error().decode("utf-8", "replace")
    return _BY_STATUS.get(status, NudgeError)(message, status)


def check(status):
    """Raises the matching exception unless `status` is OK."""
    if status != _lib.OK:
        raise error_for(status)
