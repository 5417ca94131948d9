"""`RunConfig`: every choice of one run, from Python, a TOML file or command-line flags."""

import dataclasses
import pathlib
import tomllib

from kerasreg.export import run_name


def read_toml(path, what="config file"):
    """Read a TOML file into a dict, with errors that name the file.

    Example:

    >>> read_toml("run.toml")  # doctest: +SKIP
    {'placement': 'ic', 'epochs': 30}
    """
    path = pathlib.Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what.capitalize()} not found: {path}") from None
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

    Fields mirror `build_model`, `load_dataset` and `train` arguments;
    `None` means "the default of the function it goes to".

    Example:

    >>> config = RunConfig(model="mlp", placement="dropout", epochs=3)
    >>> config.placement
    'dropout'
    """

    model: str = "mlp"
    placement: str = "bn_act_drop"
    dropout: str = None
    dropout_rate: float = 0.2
    norm: str = "batch"
    bn_preset: str = "keras"
    api: str = "functional"
    widths: tuple = None
    filters: object = None
    dataset: str = "mnist1d"
    data_dir: str = None
    validation_split: float = 0.1
    epochs: int = 50
    batch_size: int = 100
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    seed: int = 0
    name: str = None
    backend: str = None  # "jax" or "tensorflow"; None: this process's (jax unless KERAS_BACKEND says otherwise)

    @classmethod
    def from_dict(cls, values, *, source="config"):
        """A RunConfig from a dict, rejecting unknown keys by name.

        Example:

        >>> RunConfig.from_dict({"placement": "ic", "epochs": 5}).epochs
        5
        """
        check_known_keys(values, cls, source)
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
        kwargs = {k: getattr(self, k) for k in
                  ("placement", "dropout", "dropout_rate", "norm", "bn_preset", "api", "widths", "filters")}
        return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items() if v is not None}

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
