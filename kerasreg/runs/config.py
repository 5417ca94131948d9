"""`RunConfig`: every choice of one run, from Python, a TOML file or command-line flags."""

import dataclasses
import pathlib
import tomllib

from kerasreg import _checks
from kerasreg.data.defaults import VALIDATION_SPLIT
from kerasreg.export import run_name
from kerasreg.models.options import (BUILD_OPTIONS, DEFAULTS, architecture_kwargs, architecture_options,
                                     check_architecture_options)
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


def check_known_keys(values, cls, source, word="key"):
    """Raise a ValueError naming every key of `values` that is not a field of dataclass `cls`.

    Example:

    >>> check_known_keys({"epochs": 3}, RunConfig, "run.toml")
    """
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(
            f"Unknown {word}(s) {', '.join(map(repr, unknown))} in {source}. "
            f"Valid {word}s: {', '.join(fields)}."
        )


@dataclasses.dataclass
class RunConfig:
    """Everything that defines one training run.

    `model` and `options` are `build_model`'s architecture and that
    architecture's own options (`widths` of `mlp`, `filters` and `stages`
    of `resnet_small`, see `kerasreg.model_options`), checked against its
    signature when the config is made, so an architecture registered at any
    time works; `placement`, `dropout`, `dropout_rate`, `norm`, `bn_preset`
    and `api` are `build_model`'s other options; the rest go to
    `load_dataset` and `train`. `None` means "the default of the function it
    goes to". Options given as text (from the command line) are parsed for
    the chosen model: `{"filters": "4,8"}` is `(4, 8)` for `cnn1d` and
    `{"filters": "4"}` is `4` for `resnet_small`; lists become tuples.
    `patience` trains until validation loss has not improved for that many
    epochs (at most `epochs`) and keeps the weights of the best epoch
    (Keras's `EarlyStopping` with `restore_best_weights`), watching from
    epoch `patience + 1` on, so no run stops before `2 * patience` epochs;
    `None` trains all epochs.

    Example:

    >>> config = RunConfig(model="cnn1d", options={"filters": "4,8"}, placement="dropout", epochs=3)
    >>> config.options, config.placement
    ({'filters': (4, 8)}, 'dropout')
    >>> RunConfig(model="mlp", options={"filters": (4,)})
    Traceback (most recent call last):
    ...
    ValueError: Unknown option(s) filters for model 'mlp'. Valid options: widths.
    """

    model: str = "mlp"
    placement: str = DEFAULTS["placement"]
    dropout: str = DEFAULTS["dropout"]
    dropout_rate: float = DEFAULTS["dropout_rate"]
    norm: str = DEFAULTS["norm"]
    bn_preset: str = DEFAULTS["bn_preset"]
    api: str = DEFAULTS["api"]
    options: dict = dataclasses.field(default_factory=dict)
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

    def __post_init__(self):
        options = {} if self.options is None else self.options
        if not isinstance(options, dict):
            raise _checks.invalid("options", "a dict of the architecture's options such as {'widths': (64, 64)}",
                                  options)
        if self.model in list_models():  # else `build_model` names the valid models
            check_architecture_options(self.model, options)
            options = architecture_kwargs(self.model, options)
        self.options = dict(options)

    @classmethod
    def from_dict(cls, values, *, source="config"):
        """A RunConfig from a dict, rejecting unknown keys by name.

        Example:

        >>> RunConfig.from_dict({"model": "mlp", "options": {"widths": [16]}, "epochs": 5}).options
        {'widths': (16,)}
        """
        flat = sorted((set(values) - {f.name for f in dataclasses.fields(cls)}) & set(architecture_options()))
        if flat:
            raise ValueError(
                f"Architecture option(s) {', '.join(map(repr, flat))} in {source} go in the `options` table: "
                f"move them under `[options]` in a TOML file, or into `options={{...}}`.")
        check_known_keys(values, cls, source)
        return cls(**values)

    @classmethod
    def from_toml(cls, path, **overrides):
        """Read a run from a TOML file; non-None `overrides` (e.g. CLI flags) win.

        The architecture's options are the file's `[options]` table; an
        `options` override is merged into it option by option.

        Example:

        >>> RunConfig.from_toml("run.toml", epochs=3, options={"widths": "16"})  # doctest: +SKIP
        """
        values = read_toml(path)
        options = overrides.pop("options", None)
        if options and isinstance(values.get("options", {}), dict):
            values["options"] = {**values.get("options", {}), **options}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values, source=str(path))

    def model_kwargs(self):
        """Keyword arguments of `build_model` (besides name, shapes and seed).

        Example:

        >>> RunConfig(model="mlp", options={"widths": (16,)}, placement="ic").model_kwargs()["widths"]
        (16,)
        """
        kwargs = {o.name: getattr(self, o.name) for o in BUILD_OPTIONS if getattr(self, o.name) is not None}
        return {**kwargs, **self.options}

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
