"""One configured run, end to end: validate, build, train, export.

`RunConfig` holds every choice of a run (model, placement, kinds, rates,
data, optimisation, seed); `run()` checks all of it before any training,
trains in a hidden work directory under `out` and exports the finished run
to `out/<name>/`. `kerasreg train` and `kerasreg study` both go through
`run()`, so a run configured either way behaves the same.
"""

import dataclasses
import pathlib
import shutil
import sys
import tomllib

from kerasreg import export, factory, training
from kerasreg.data import load_dataset

WORK_DIR = ".work"


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
        return export.run_name({key: getattr(self, key) for key in (
            "model", "placement", "dropout", "dropout_rate", "norm", "bn_preset", "seed")})


def _work_dir(out, name):
    return pathlib.Path(out) / WORK_DIR / name


def prepare(config):
    """Validate a config by loading its data and building its model; nothing is trained.

    Returns:
        `(dataset, model)`.

    Example:

    >>> dataset, model = prepare(RunConfig(epochs=1))  # doctest: +SKIP
    """
    training.make_optimizer(config.optimizer, config.learning_rate)
    for name in ("epochs", "batch_size"):
        training.check_positive_int(getattr(config, name), name)
    dataset = load_dataset(config.dataset, data_dir=config.data_dir,
                           validation_split=config.validation_split, seed=config.seed)
    training.seed_everything(config.seed)
    model = factory.build_model(
        config.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes,
        seed=config.seed, **config.model_kwargs(),
    )
    return dataset, model


def run(config, *, out="saved_models", overwrite=False, resume=False, fold_bn=False, callbacks=(), verbose=1):
    """Validate, train and export one run; returns the export path.

    Everything is checked before training starts: names, rates, shapes,
    the dataset, and that `out/<name>` does not exist yet (unless
    `overwrite`). Training happens in `out/.work/<name>/`; only a finished
    run is exported, atomically, and the work directory is then removed. A
    run that diverges raises `TrainingFailed` and is never exported.

    Args:
        config: `RunConfig`.
        out: str or path. Export directory. Defaults to `"saved_models"`.
        overwrite: bool. Replace an existing export of the same name. Defaults to `False`.
        resume: bool. Continue a killed run from its last completed epoch. Defaults to `False`.
        fold_bn: bool. Also export a BatchNorm-folded SavedModel. Defaults to `False`.
        callbacks: extra Keras callbacks for `train`. Defaults to `()`.
        verbose: int. 1 prints one line per epoch. Defaults to `1`.

    Returns:
        pathlib.Path of the export.

    Example:

    >>> path = run(RunConfig(epochs=2), out="/tmp/exports")  # doctest: +SKIP
    """
    name = config.run_name()
    export.check_export_target(out, name, overwrite)
    dataset, model = prepare(config)
    work_dir = _work_dir(out, name)
    if work_dir.exists() and not resume:
        if verbose:
            print(f"Discarding the unfinished run in {work_dir} (use --resume to continue it).",
                  file=sys.stderr)
        shutil.rmtree(work_dir)
    result = training.train(
        model, dataset, epochs=config.epochs, batch_size=config.batch_size,
        optimizer=config.optimizer, learning_rate=config.learning_rate, seed=config.seed,
        run_dir=work_dir, callbacks=callbacks, resume=resume, verbose=verbose,
    )
    path = export.export_run(result, out=out, name=name, overwrite=overwrite, fold_bn=fold_bn)
    shutil.rmtree(work_dir)
    try:
        work_dir.parent.rmdir()  # only succeeds once no other run is in progress
    except OSError:
        pass
    return path
