"""How Python checks and converts a training option: each value against the option table's range
(_options.py, generated), with messages that name the option by its keyword, as a Python caller
wrote it ("validation_split is 1.5; it must be at least 0 and below 1")."""

import math
import numbers
import operator
import struct

from ._options import BY_KEYWORD, CHOICES, OPTIONS


def _invalid(message):
    # Imported here, not above: _errors needs _lib, which lays out its ctypes struct from C_FIELDS.
    from ._errors import InvalidArgumentError
    return InvalidArgumentError(message)


def _float32(value):
    """`value` as a C float holds it: the nearest float32, infinite beyond float32's range."""
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def _text(value, kind):
    """A value as messages show it; a C float with the fewest digits that give it back (0.001)."""
    if kind in ("float", "floats") and math.isfinite(value):
        for digits in range(1, 10):
            short = float(f"{value:.{digits}g}")
            if _float32(short) == value:
                return str(short)
    return str(value)


def _bound_text(bound, values):
    if isinstance(bound, str):
        if values is None or bound not in values:
            return bound
        return f"{bound} ({_text(values[bound], BY_KEYWORD[bound].kind)})"
    return str(bound)


def requirement(option, values=None):
    """What `option` accepts, in the words of the library's own messages: "1 to 1048576". A bound
    that is another option shows its value from `values` (keyword -> value) when given."""
    low, high = _bound_text(option.low, values), _bound_text(option.high, values)
    whole = option.kind in ("count", "seed")
    if option.low is not None and option.high is None:
        if whole:
            return f"{low} or more"
        return f"a finite number, {low} or more" if option.low_inclusive else f"a finite number above {low}"
    if option.low is not None:
        if whole:
            return f"{low} to {high}"
        return (f"{'at least' if option.low_inclusive else 'above'} {low} and "
                f"{'at most' if option.high_inclusive else 'below'} {high}")
    if option.high is not None:
        return f"{'at most' if option.high_inclusive else 'below'} {high}"
    return "a finite number" if option.kind in ("float", "double", "floats") else ""


def _within(option, value, values):
    low = values[option.low] if isinstance(option.low, str) else option.low
    high = values[option.high] if isinstance(option.high, str) else option.high
    if option.kind not in ("count", "seed") and not math.isfinite(value):
        return False
    if low is not None and not (value >= low if option.low_inclusive else value > low):
        return False
    return high is None or (value <= high if option.high_inclusive else value < high)


def _whole(value):
    """`value` as an int when it is a whole number (an int, a numpy integer, 3.0), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        pass
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


#: The range of every 64-bit seed: negative ones stand for their two's-complement pattern (-1 is
#: 2**64 - 1), so that a seed from anywhere (a signed or an unsigned 64-bit integer) is accepted.
SEED_RANGE = (-2**63, 2**64 - 1)
#: The largest value of a uint32_t field (a count of the training options).
UINT32_MAX = 2**32 - 1


def whole_number(value, name, low, high=None, must="it must be"):
    """`value` as an int when it is a whole number from `low` to `high` (None: no upper bound): an int,
    a numpy integer or a float such as 3.0; never a bool, a string or None. Else InvalidArgumentError
    naming `name`: "count is 18446744073709551619; it must be a whole number from 0 to 256".

    The one check of every integer argument Python hands to the library: ctypes would silently wrap
    a value out of its C type's range (2**64 + 3 becomes 3 in a size_t), so each caller gives the
    range of the C type, or the documented range when that is narrower."""
    number = _whole(value)
    if number is not None and number >= low and (high is None or number <= high):
        return number
    shown = str(value) if isinstance(value, numbers.Number) else repr(value)
    wanted = f"from {low} to {high}" if high is not None else f"{low} or more"
    raise _invalid(f"{name} is {shown}; {must} a whole number {wanted}")


def seed(value, name="seed"):
    """A seed (whole number, SEED_RANGE) as the uint64_t the library takes. None is refused: the same
    seed gives the same run, and a random run is one seed away (seed=secrets.randbits(64))."""
    if value is None:
        raise _invalid(f"{name} is None; it must be a whole number from {SEED_RANGE[0]} to {SEED_RANGE[1]} (the same "
                       f"seed gives the same run; for a random one, pass {name}=secrets.randbits(64))")
    return whole_number(value, name, *SEED_RANGE) & (2**64 - 1)


def _count_range(option):
    """The whole numbers a count option takes, as far as its own bounds say (a bound that is another
    option is checked afterwards, by _within): within its uint32_t field."""
    low, high = 0, UINT32_MAX
    if isinstance(option.low, int):
        low = max(low, option.low if option.low_inclusive else option.low + 1)
    if isinstance(option.high, int):
        high = min(high, option.high if option.high_inclusive else option.high - 1)
    return low, high


def _number(option, value, values, subject, must):
    """One number of `option` as its C field holds it; `subject` and `must` begin the message."""
    if option.kind == "seed":
        return seed(value, subject)
    if option.kind == "count":
        stored = whole_number(value, subject, *_count_range(option), must)
        shown = str(stored)
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _invalid(f"{subject} is {value!r}; {must} a number") from None
        stored = number if option.kind == "double" else _float32(number)
        shown = str(number)
        if _text(stored, option.kind) != shown and not math.isnan(number):
            shown += f" ({_text(stored, option.kind)} as a 32-bit float)"
    if not _within(option, stored, values):
        raise _invalid(f"{subject} is {shown}; {must} {requirement(option, values)}")
    return stored


def convert(option, value, values):
    """`value` as the C field of `option` holds it (a list of floats for a list), or
    InvalidArgumentError naming the keyword. `values` maps keywords to the values already converted
    (for ranges that name another option)."""
    name = option.keyword
    if option.kind == "choice":
        codes = CHOICES[option.choices]
        if not isinstance(value, str) or value not in codes:
            raise _invalid(f"{name} {value!r} is not one of {', '.join(sorted(codes))}")
        return codes[value]
    if option.kind == "flag":
        return 1 if value else 0
    if option.kind == "floats":
        return [_number(option, entry, values, f"{name}[{index}]", f"a {option.entry or 'value'} must be")
                for index, entry in enumerate(value)]
    return _number(option, value, values, name, "it must be")


def set_fields(options, values):
    """Sets the fields of a nudge_train_options from `values` (keyword -> value) for every generated
    option; returns the converted values by keyword."""
    converted = {}
    for option in OPTIONS:
        if option.generated and option.keyword in values:
            converted[option.keyword] = convert(option, values[option.keyword], {**values, **converted})
            setattr(options, option.field, converted[option.keyword])
    return converted


def defaults():
    """Every option's keyword and default, in order."""
    return {option.keyword: option.default for option in OPTIONS}