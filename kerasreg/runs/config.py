"""`RunConfig`: every choice of one run, from Python, a TOML file or command-line flags."""

import dataclasses
import functools
import pathlib
import tomllib

from kerasreg.data.defaults import VALIDATION_SPLIT
from kerasreg.export import run_name
from kerasreg.models.options import BUILD_OPTIONS, architecture_kwargs, architecture_options
from kerasreg.models.zoo import list_models
from kerasreg.training import defaults


def read_toml(path, what="config file"):
    """Read a TOML file into a dict, with errors that name the file.

    Example:

    >>> read_toml("run.toml")  # doctest: +SKIP
    {'placement': 'ic', 'epochs': 30}
    """
    path = pathlib.Path(path)
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what.capitalize()} not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what.capitalize()} {path} is not UTF-8 text (TOML must be): {exc.reason} "
                         f"at byte {exc.start}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"Invalid TOML in {what} {path}: {exc}") from None


def check_known_keys(values, cls, source, word="key", extra=()):
    """Raise a ValueError naming every key of `values` that is neither a field of dataclass `cls` nor in `extra`.

    Example:

    >>> check_known_keys({"epochs": 3}, RunConfig, "run.toml")
    """
    fields = [f.name for f in dataclasses.fields(cls)] + [name for name in extra if name not in fields_of(cls)]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"Unknown {word}(s) {', '.join(map(repr, unknown))} in {source}. "
            f"Valid {word}s: {', '.join(fields)}."
        )


def fields_of(cls):
    """The names of a dataclass's fields.

    Example:

    >>> "epochs" in fields_of(RunConfig)
    True
    """
    return {f.name for f in dataclasses.fields(cls)}


# The model part of a run: the architecture name, every `build_model` option
# and every option of the architectures registered when this module is
# imported, all derived from `kerasreg.models.options`.
_ModelFields = dataclasses.make_dataclass("_ModelFields", [
    ("model", str, dataclasses.field(default="mlp")),
    *((o.name, o.type, dataclasses.field(default=o.default)) for o in BUILD_OPTIONS),
    *((name, object, dataclasses.field(default=None)) for name in architecture_options()),
])


@dataclasses.dataclass
class RunConfig(_ModelFields):
    """Everything that defines one training run.

    Fields mirror `build_model` (`model`, its options and the options of
    every registered architecture, such as `widths`, `filters` and
    `stages`), `load_dataset` and `train` arguments; `None` means "the
    default of the function it goes to". Architecture options given as text
    (from the command line) are parsed for the chosen model: `filters="4,8"`
    is `(4, 8)` for `cnn1d` and `filters="4"` is `4` for `resnet_small`.
    `patience` trains until validation loss has not improved for that many
    epochs (at most `epochs`) and keeps the weights of the best epoch
    (Keras's `EarlyStopping` with `restore_best_weights`), watching from
    epoch `patience + 1` on, so no run stops before `2 * patience` epochs;
    `None` trains all epochs. Options of an architecture registered after
    kerasreg was imported are accepted as keywords too and kept in `options`
    (`RunConfig(model="mine", depth=3).depth == 3`).

    Example:

    >>> config = RunConfig(model="mlp", placement="dropout", epochs=3)
    >>> config.placement
    'dropout'
    """

    dataset: str = "mnist1d"
    data_dir: str = None
    validation_split: float = VALIDATION_SPLIT
    epochs: int = defaults.EPOCHS
    batch_size: int = defaults.BATCH_SIZE
    optimizer: str = defaults.OPTIMIZER
    learning_rate: float = defaults.LEARNING_RATE
    patience: int = None
    seed: int = 0
    name: str = None
    backend: str = None  # "jax" or "tensorflow"; None: this process's (jax unless KERAS_BACKEND says otherwise)
    # Options of architectures registered after this module was imported (they have no field of their own).
    options: dict = None

    def __post_init__(self):
        if self.model in list_models():  # else `build_model` names the valid models
            fields = fields_of(type(self))
            for name, value in architecture_kwargs(self.model, self._architecture_values()).items():
                if name in fields:
                    setattr(self, name, value)
                else:
                    self.options[name] = value

    def __getattr__(self, name):  # an option held in `options` reads like a field
        options = self.__dict__.get("options") or {}
        if name in options:
            return options[name]
        raise AttributeError(f"'RunConfig' object has no attribute {name!r}")

    def _architecture_values(self):
        return {name: getattr(self, name) for name in architecture_options() if hasattr(self, name)}

    @classmethod
    def from_dict(cls, values, *, source="config"):
        """A RunConfig from a dict, rejecting unknown keys by name.

        Example:

        >>> RunConfig.from_dict({"placement": "ic", "epochs": 5}).epochs
        5
        """
        check_known_keys(values, cls, source, extra=architecture_options())
        return cls(**values)

    @classmethod
    def from_toml(cls, path, **overrides):
        """Read a run from a TOML file; non-None `overrides` (e.g. CLI flags) win.

        Example:

        >>> RunConfig.from_toml("run.toml", epochs=3)  # doctest: +SKIP
        """
        values = read_toml(path)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values, source=str(path))

    def model_kwargs(self):
        """Keyword arguments of `build_model` (besides name, shapes and seed)."""
        kwargs = {o.name: getattr(self, o.name) for o in BUILD_OPTIONS if getattr(self, o.name) is not None}
        return {**kwargs, **architecture_kwargs(self.model, self._architecture_values())}

    def run_name(self):
        """The given name, else one derived from the configuration.

        Example:

        >>> RunConfig(placement="ic", seed=1).run_name()
        'mlp-ic-standard0.2-seed1'
        """
        if self.name:
            return self.name
        return run_name({key: getattr(self, key) for key in (
            "model", "placement", "dropout", "dropout_rate", "norm", "bn_preset", "seed")})



def _accept_later_options(generated):
    """RunConfig's generated `__init__`, also taking options of architectures registered after import.

    Those go into `options`; any other unknown keyword is refused as before.
    """
    @functools.wraps(generated)
    def __init__(self, *args, options=None, **kwargs):
        later = sorted(set(kwargs) - fields_of(RunConfig))
        unknown = [name for name in later if name not in architecture_options()]
        if unknown:
            raise TypeError(f"RunConfig.__init__() got an unexpected keyword argument {unknown[0]!r}")
        options = {**(options or {}), **{name: kwargs.pop(name) for name in later}}
        generated(self, *args, options=options or None, **kwargs)

    return __init__


RunConfig.__init__ = _accept_later_options(RunConfig.__init__)
