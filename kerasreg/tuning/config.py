"""`TuneConfig`: a search (space, tuner, budget, objective) from Python, a TOML file or command-line flags."""

from __future__ import annotations

import dataclasses

from kerasreg import _checks
from kerasreg.data.defaults import VALIDATION_SPLIT
from kerasreg.runs import check_known_keys, read_toml
from kerasreg.training import defaults as training
from kerasreg.training import make_optimizer
from kerasreg.tuning import defaults
from kerasreg.tuning.space import SPACE_FIELDS

# Metrics every trial logs at every epoch, whatever its placement, and the direction that is better.
# The objective must be one of them; test metrics are never used for selection.
OBJECTIVES = {"val_accuracy": "max", "val_loss": "min", "clean_gap_accuracy": "min", "clean_gap_loss": "min",
              "reported_gap_accuracy": "min", "reported_gap_loss": "min"}


@dataclasses.dataclass
class TuneConfig:
    """Everything that defines a search.

    The space fields (`placements`, `rates`, `dropouts`, `norms`,
    `bn_presets`, `options`) are the arguments of `search_space`; `None`
    means its default (every registered placement, rates 0.1-0.5, each
    placement's own dropout kind, batch norm, Keras BN preset). Every trial
    trains with `seed`, so two trials with the same hyperparameters give the
    same result. `tuner` is `random`, `bayesian` or `hyperband` (which
    spends up to `epochs` per trial in brackets of `factor`, and sets its own
    number of trials, so `max_trials` is refused with it; the others default
    to 10 trials). The `best` trials are exported.

    Example:

    >>> config = TuneConfig(model="mlp", placements=["none", "dropout"], max_trials=4, epochs=3)
    >>> config.tuner, config.objective
    ('random', 'val_accuracy')
    """

    model: str = "mlp"
    placements: list | str = None
    rates: list | dict = None
    dropouts: list | str = None
    norms: list | str = None
    bn_presets: list | str = None
    options: dict = None
    dataset: str = "mnist1d"
    data_dir: str = None
    validation_split: float = VALIDATION_SPLIT
    epochs: int = defaults.EPOCHS
    batch_size: int = training.BATCH_SIZE
    optimizer: str = training.OPTIMIZER
    learning_rate: float = training.LEARNING_RATE
    seed: int = 0
    tuner: str = "random"
    max_trials: int = None  # random and bayesian: defaults.MAX_TRIALS; hyperband sets its own
    objective: str = "val_accuracy"
    factor: int = 3
    best: int = defaults.BEST

    @classmethod
    def from_dict(cls, values, *, source="config"):
        """A TuneConfig from a dict, rejecting unknown keys by name.

        Example:

        >>> TuneConfig.from_dict({"tuner": "bayesian", "max_trials": 5}).max_trials
        5
        """
        check_known_keys(values, cls, source)
        return cls(**values)

    @classmethod
    def from_toml(cls, path, **overrides):
        """Read a search from a TOML file; non-None `overrides` (e.g. CLI flags) win.

        Example:

        >>> TuneConfig.from_toml("tune.toml", max_trials=20)  # doctest: +SKIP
        """
        values = read_toml(path, "tune file")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values, source=f"tune file {path}")

    def space_kwargs(self):
        """The search-space arguments of `PlacementHyperModel`."""
        return {name: getattr(self, name) for name in SPACE_FIELDS}

    def validate(self):
        """Check the settings that need no data or model; the space is checked by `PlacementHyperModel`."""
        _checks.one_of(self.tuner, defaults.TUNERS, "tuner")
        _checks.one_of(self.objective, tuple(OBJECTIVES), "objective")
        for name in ("epochs", "batch_size", "best"):
            _checks.positive_int(getattr(self, name), name)
        if self.tuner == "hyperband" and self.max_trials is not None:
            raise ValueError("Hyperband sets its own number of trials from `epochs` and `factor`; leave "
                             f"`max_trials` out with tuner='hyperband'. Received: max_trials={self.max_trials!r}")
        if self.max_trials is not None:
            _checks.positive_int(self.max_trials, "max_trials")
        if not _checks.is_int(self.factor) or self.factor < 2:
            raise _checks.invalid("factor", "an int >= 2", self.factor)
        _checks.seed(self.seed)
        make_optimizer(self.optimizer, self.learning_rate)
        return self
