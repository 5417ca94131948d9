"""The one set of argument checks, worded as Keras words them.

Every public entry point checks its arguments here, so a value means the
same everywhere: NumPy scalars are accepted wherever Python numbers are,
bools never count as numbers, and every message has the form
"Invalid value received for argument `x`. Expected .... Received: x=...".
"""

import math
import numbers

# Seeds feed NumPy, TensorFlow and JAX generators, which all take 32-bit seeds.
SEED_LIMIT = 2**32


def invalid(argument, expected, value=None, *, of="", received=None):
    """The ValueError for a bad argument, in Keras's wording.

    Args:
        argument: str. The argument's name.
        expected: str. What would have been valid.
        value: the value received, shown as `argument=repr(value)`.
        of: str. Whose argument it is, e.g. `" of model 'mlp'"`. Defaults to `""`.
        received: str or None. What to show after "Received:" instead of
            `argument=repr(value)` (a type name, a shape). Defaults to `None`.

    Example:

    >>> str(invalid("rate", "a float in [0, 1)", 1.5))
    'Invalid value received for argument `rate`. Expected a float in [0, 1). Received: rate=1.5'
    """
    shown = f"{argument}={value!r}" if received is None else received
    return ValueError(f"Invalid value received for argument `{argument}`{of}. Expected {expected}. Received: {shown}")


def is_int(value):
    """True for Python and NumPy integers, False for bools.

    Example:

    >>> is_int(3), is_int(True), is_int(3.0)
    (True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def is_real(value):
    """True for Python and NumPy real numbers, False for bools.

    Example:

    >>> is_real(0.5), is_real(False)
    (True, False)
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def positive_int(value, argument):
    """Return `value` as an int, or raise unless it is a positive integer.

    Example:

    >>> positive_int(50, "epochs")
    50
    """
    return _int_at_least(value, argument, 1, "a positive int")


def non_negative_int(value, argument):
    """Return `value` as an int, or raise unless it is an integer >= 0.

    Example:

    >>> non_negative_int(0, "initial_epoch")
    0
    """
    return _int_at_least(value, argument, 0, "an int >= 0")


def _int_at_least(value, argument, minimum, expected):
    if not is_int(value) or value < minimum:
        raise invalid(argument, expected, value)
    return int(value)


def seed(value, argument="seed", *, allow_none=False):
    """Return a seed as an int in [0, 2**32) (or None when allowed), else raise.

    Example:

    >>> seed(0), seed(None, allow_none=True)
    (0, None)
    """
    if value is None and allow_none:
        return None
    if not is_int(value) or not 0 <= value < SEED_LIMIT:
        expected = "an int in [0, 2**32)" + (" or None" if allow_none else "")
        raise invalid(argument, expected, value)
    return int(value)


def rate(value, argument="rate"):
    """Return a dropout rate as a float in [0, 1), else raise.

    Example:

    >>> rate(0.2)
    0.2
    """
    if not is_real(value) or not 0 <= value < 1:
        raise invalid(argument, "a float in [0, 1)", value)
    return float(value)


def fraction(value, argument):
    """Return a float strictly between 0 and 1, else raise.

    Example:

    >>> fraction(0.1, "validation_split")
    0.1
    """
    if not is_real(value) or not 0 < value < 1:
        raise invalid(argument, "a float in (0, 1)", value)
    return float(value)


def positive_float(value, argument):
    """Return a finite float > 0, else raise.

    Example:

    >>> positive_float(1e-3, "learning_rate")
    0.001
    """
    if not is_real(value) or not (value > 0 and math.isfinite(value)):
        raise invalid(argument, "a positive float", value)
    return float(value)


def one_of(value, choices, argument):
    """Return `value` if it is one of `choices`, else raise naming them.

    Example:

    >>> one_of("sequential", ("functional", "sequential"), "api")
    'sequential'
    """
    if not isinstance(value, str) or value not in choices:
        raise invalid(argument, f"one of {', '.join(choices)}", value)
    return value


def writable_dir(path, argument):
    """Return `path` as a `pathlib.Path` if it is, or can be created as, a writable directory; else raise.

    Nothing is left behind: the nearest existing ancestor must be a
    directory in which a probe folder can be created and removed, so a
    read-only or non-directory location fails before any work.

    Example:

    >>> writable_dir("/tmp", "out").name
    'tmp'
    """
    import pathlib
    import tempfile

    path = pathlib.Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link: nothing could be created through it
            break
        existing = existing.parent
    if not existing.is_dir():
        raise invalid(argument, f"a directory ({existing} is not a directory)", str(path))
    try:  # a probe, not os.access: root passes every permission check but not a read-only mount
        tempfile.TemporaryDirectory(dir=existing, prefix=".kerasreg-probe-").cleanup()
    except OSError as exc:
        raise invalid(argument, f"a writable directory ({existing}: {exc.strerror})", str(path)) from None
    return path
