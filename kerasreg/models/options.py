"""The factory's options, declared once.

`BUILD_OPTIONS` lists the keyword arguments `build_model` takes for every
architecture; an architecture's own options are those of its signature
(`model_options`), which `architecture_options()` collects over the
registered architectures. The command-line flags and the model part of an
export's manifest are derived from these, and `RunConfig(model=...,
options={...})` checks its `options` against the chosen architecture's
signature, so a new option or a newly registered architecture shows up
everywhere at once.

This module imports neither Keras nor TensorFlow: `kerasreg --help` builds
its flags from it.
"""

import dataclasses

from kerasreg import _checks
from kerasreg.models import zoo


@dataclasses.dataclass(frozen=True)
class Option:
    """One keyword argument of `build_model`.

    Args:
        name: str. The keyword, e.g. `"dropout_rate"`.
        default: The default `build_model` uses.
        help: str. One line for `--help` and the docs.
        type: callable. Parses command-line text into a value (`str`,
            `float`, ...). Defaults to `str`.

    Example:

    >>> Option("dropout_rate", 0.2, "fraction dropped", type=float).flag
    '--dropout-rate'
    """

    name: str
    default: object
    help: str
    type: object = str

    @property
    def flag(self):
        """The command-line flag, e.g. `--dropout-rate`."""
        return "--" + self.name.replace("_", "-")


BUILD_OPTIONS = (
    Option("placement", "bn_act_drop", "placement name, see `kerasreg list`"),
    Option("dropout", None, "dropout kind (default: the placement's own, else standard)"),
    Option("dropout_rate", 0.2, "fraction dropped, in [0, 1)", type=float),
    Option("norm", "batch", "norm kind, see `kerasreg list`"),
    Option("bn_preset", "keras", "BatchNorm momentum/epsilon: keras or torch"),
    Option("api", "functional", "functional or sequential"),
)
DEFAULTS = {option.name: option.default for option in BUILD_OPTIONS}
# What an export's manifest records about the model besides its architecture:
# the placement's block and scope (so a placement registered in another
# process can still be read back), every build option and the architecture options.
RECORDED = ("placement", "block", "dropout_scope", *(o.name for o in BUILD_OPTIONS if o.name != "placement"),
            "options")


def _text(value):
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def architecture_options():
    """Every option of the registered architectures, with the models that take it.

    Returns:
        dict: option name -> {model name: its default}, sorted by option name.

    Example:

    >>> architecture_options()["filters"]["resnet_small"]
    32
    """
    found = {}
    for model in zoo.list_models():
        for name, default in zoo.model_options(model).items():
            found.setdefault(name, {})[model] = default
    return dict(sorted(found.items()))


def architecture_help(name, defaults):
    """The `--help` text of an architecture option, from the models that take it.

    Example:

    >>> architecture_help("stages", {"resnet_small": 2})
    'option of resnet_small (default 2)'
    """
    uses = ", ".join(f"{model} (default {_text(default)})" for model, default in defaults.items())
    return f"option of {uses}"


def _parse(model, name, text, default):
    expected = None
    try:
        if isinstance(default, bool):
            expected = "true or false"
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        if isinstance(default, (tuple, list)):
            item = float if any(isinstance(v, float) for v in default) else int
            expected = f"comma-separated {item.__name__}s such as 32,64"
            parsed = tuple(item(v) for v in text.replace("x", ",").split(",") if v.strip())
            if not parsed:
                raise ValueError(text)
            return parsed
        if isinstance(default, (int, float)):
            expected = "an int" if isinstance(default, int) else "a float"
            return type(default)(text)
    except ValueError:
        raise _checks.invalid(name, expected, text, of=f" of model {model!r}") from None
    return text


def check_architecture_options(model, names):
    """Raise a ValueError naming each of `names` that `model`'s signature does not take, and the ones it does.

    Example:

    >>> check_architecture_options("cnn1d", ["filters"])
    >>> check_architecture_options("mlp", ["depth"])
    Traceback (most recent call last):
    ...
    ValueError: Unknown option(s) depth for model 'mlp'. Valid options: widths.
    """
    valid = zoo.model_options(model)
    unknown = sorted(set(names) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown option(s) {', '.join(unknown)} for model {model!r}. "
            f"Valid options: {', '.join(valid) or 'none'}."
        )


def architecture_kwargs(model, values):
    """`values` for `model`'s options with text parsed and lists made tuples, `None` left out.

    Text (from a command line) is parsed by the type of the option's default
    in `model`'s signature, so `filters="4"` is `4` for `resnet_small` and
    `(4,)` for `cnn1d`. Names the model does not take are passed through
    (`check_architecture_options` names them).

    Example:

    >>> architecture_kwargs("cnn1d", {"filters": "4,8", "kernel_size": None})
    {'filters': (4, 8)}
    >>> architecture_kwargs("resnet_small", {"filters": "4"})
    {'filters': 4}
    >>> architecture_kwargs("mlp", {"widths": 16})
    {'widths': (16,)}
    """
    defaults = zoo.model_options(model)
    kwargs = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, str) and name in defaults:
            value = _parse(model, name, value, defaults[name])
        elif isinstance(value, list):
            value = tuple(value)
        elif isinstance(defaults.get(name), tuple) and _checks.is_int(value):
            value = (value,)  # one layer, as `--widths 16` gives
        kwargs[name] = value
    return kwargs

