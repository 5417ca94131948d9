"""`StudyConfig`: a grid of runs (models x placements x dropout kinds x rates x norms x seeds) and its presets."""

import dataclasses

from kerasreg import _backend, _checks
from kerasreg.data import check_validation_split, load_dataset
from kerasreg.models import build_model, get_dropout_kind, get_model_fn, get_norm_kind, get_placement, kinds
from kerasreg.models.placements import BUILT_INS
from kerasreg.runs import RunConfig, check_known_keys, read_toml
from kerasreg.training import make_optimizer


PRESETS = {
    "quick": {
        "models": ["mlp"], "placements": [p.name for p in BUILT_INS],
        "dropouts": [None], "rates": [0.2], "norms": ["batch"], "seeds": [0, 1, 2],
        "epochs": 30, "dataset": "mnist1d",
    },
    "full": {
        "models": ["mlp", "cnn1d"], "placements": [p.name for p in BUILT_INS],
        "dropouts": [None], "rates": [0.1, 0.2, 0.3, 0.5], "norms": ["batch"], "seeds": [0, 1, 2],
        "epochs": 50, "dataset": "mnist1d",
    },
}


@dataclasses.dataclass
class StudyConfig:
    """A grid of runs. List fields are the grid's axes; the rest applies to every run.

    `dropouts` may hold `None`: each placement's own dropout kind (`standard`,
    or `uout` for the `uout` placement). Placements without dropout are run
    once per seed with rate 0 instead of once per rate.

    Example:

    >>> config = StudyConfig(placements=["none", "dropout"], seeds=[0], epochs=2)
    >>> len(config.runs())
    2
    """

    models: list = dataclasses.field(default_factory=lambda: ["mlp"])
    placements: list = dataclasses.field(default_factory=lambda: [p.name for p in BUILT_INS])
    dropouts: list = dataclasses.field(default_factory=lambda: [None])
    rates: list = dataclasses.field(default_factory=lambda: [0.2])
    norms: list = dataclasses.field(default_factory=lambda: ["batch"])
    bn_preset: str = "keras"
    seeds: list = dataclasses.field(default_factory=lambda: [0, 1, 2])
    epochs: int = 30
    dataset: str = "mnist1d"
    data_dir: str = None
    batch_size: int = 100
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    validation_split: float = 0.1
    backend: str = None  # "jax" or "tensorflow"; None: this process's (jax unless KERAS_BACKEND says otherwise)

    @classmethod
    def preset(cls, name):
        """A built-in preset: `quick` (the README's main job) or `full`.

        Example:

        >>> StudyConfig.preset("full").rates
        [0.1, 0.2, 0.3, 0.5]
        """
        _checks.one_of(name, tuple(PRESETS), "preset")
        return cls(**PRESETS[name])

    @classmethod
    def from_toml(cls, path, base=None):
        """Read a study file; keys it leaves out come from `base` (default: the quick preset).

        Example:

        >>> StudyConfig.from_toml("study.toml")  # doctest: +SKIP
        """
        values = read_toml(path, "study file")
        check_known_keys(values, cls, f"study file {path}", word="field")
        base = base or cls.preset("quick")
        config = dataclasses.replace(base, **values)
        config.validate(source=str(path))
        return config

    def validate(self, source="study"):
        """Check every field and every grid point before anything trains.

        Errors name the field, e.g. "Invalid value in study for field `rates`".
        """
        for field in ("models", "placements", "dropouts", "rates", "norms", "seeds"):
            value = getattr(self, field)
            if not isinstance(value, list) or not value:
                raise ValueError(f"Invalid value in {source} for field `{field}`: "
                                 f"expected a non-empty list. Received: {field}={value!r}")
        per_item = {
            "models": get_model_fn,
            "placements": get_placement,
            "dropouts": lambda v: v is None or get_dropout_kind(v),
            "rates": lambda v: _checks.rate(v, "rate"),
            "norms": get_norm_kind,
            "seeds": _checks.seed,
        }
        checks = [(field, check, value) for field, check in per_item.items() for value in getattr(self, field)]
        checks += [
            ("bn_preset", kinds.get_bn_preset, self.bn_preset),
            ("epochs", lambda v: _checks.positive_int(v, "epochs"), self.epochs),
            ("batch_size", lambda v: _checks.positive_int(v, "batch_size"), self.batch_size),
            ("optimizer", lambda v: make_optimizer(v, 1e-3), self.optimizer),
            ("learning_rate", lambda v: make_optimizer("adam", v), self.learning_rate),
            ("validation_split", check_validation_split, self.validation_split),
            ("backend", lambda v: v is None or _backend.check_backend(v), self.backend),
            ("dataset", lambda v: load_dataset(v, data_dir=self.data_dir), self.dataset),
        ]
        for field, check, value in checks:
            try:
                check(value)
            except (ValueError, FileNotFoundError) as exc:
                raise ValueError(f"Invalid value in {source} for field `{field}`: {exc}") from None
        dataset = load_dataset(self.dataset, data_dir=self.data_dir)
        for config in self.runs():
            try:
                build_model(config.model, input_shape=dataset.input_shape,
                                    num_classes=dataset.num_classes, **config.model_kwargs())
            except ValueError as exc:
                raise ValueError(
                    f"Invalid combination of models, placements, dropouts and norms in {source}: "
                    f"run {config.run_name()}: {exc}"
                ) from None

    def runs(self):
        """The grid as a list of `RunConfig`, without duplicates.

        Example:

        >>> [c.run_name() for c in StudyConfig(placements=["none"], seeds=[0], rates=[0.1, 0.5]).runs()]
        ['mlp-none-standard0-seed0']
        """
        grid, seen = [], set()
        for model in self.models:
            for name in self.placements:
                placement = get_placement(name)
                rates = self.rates if placement.uses_dropout else [0.0]
                dropouts = [placement.dropout_kind] if placement.dropout_kind else self.dropouts
                for dropout in dropouts:
                    for rate in rates:
                        for norm in self.norms:
                            for seed in self.seeds:
                                config = RunConfig(
                                    model=model, placement=name, dropout=dropout, dropout_rate=rate,
                                    norm=norm, bn_preset=self.bn_preset, dataset=self.dataset, data_dir=self.data_dir,
                                    validation_split=self.validation_split, epochs=self.epochs,
                                    batch_size=self.batch_size, optimizer=self.optimizer,
                                    learning_rate=self.learning_rate, seed=seed, backend=self.backend,
                                )
                                if config.run_name() not in seen:
                                    seen.add(config.run_name())
                                    grid.append(config)
        return grid
