"""The placement study: a grid of runs (models x placements x dropout kinds x rates x norms x seeds).

Every run is trained by the trainer and exported by `export_run` into
`<out>/runs/<run-name>/`; all exports are then re-evaluated by compare and
aggregated over seeds into `report.md` / `report.html` with plots. A run
already exported is skipped, so rerunning the same command (or
`--resume`) continues a killed study; a failed run is recorded in the
report and does not stop the others.

Questions the report answers, from the measured numbers only: which
placement has the smallest clean gap, which the best test accuracy, which
shows the largest BatchNorm variance shift (Li et al., "Understanding the
Disharmony between Dropout and Batch Normalization by Variance Shift", CVPR
2019), and which differences are within seed noise.
"""

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import pathlib
import sys

from kerasreg import data, factory, layers, placements, report, runs, training

PRESETS = {
    "quick": {
        "models": ["mlp"], "placements": [p.name for p in placements.BUILT_INS],
        "dropouts": [None], "rates": [0.2], "norms": ["batch"], "seeds": [0, 1, 2],
        "epochs": 30, "dataset": "mnist1d",
    },
    "full": {
        "models": ["mlp", "cnn1d"], "placements": [p.name for p in placements.BUILT_INS],
        "dropouts": [None], "rates": [0.1, 0.2, 0.3, 0.5], "norms": ["batch"], "seeds": [0, 1, 2],
        "epochs": 50, "dataset": "mnist1d",
    },
}
RUNS_DIR = "runs"
FAILURES = "failures.jsonl"


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
    placements: list = dataclasses.field(default_factory=lambda: [p.name for p in placements.BUILT_INS])
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

    @classmethod
    def preset(cls, name):
        """A built-in preset: `quick` (the README's main job) or `full`.

        Example:

        >>> StudyConfig.preset("full").rates
        [0.1, 0.2, 0.3, 0.5]
        """
        if name not in PRESETS:
            raise ValueError(
                f"Invalid value received for argument `preset`. Expected one of "
                f"{', '.join(PRESETS)}. Received: preset={name!r}"
            )
        return cls(**PRESETS[name])

    @classmethod
    def from_toml(cls, path, base=None):
        """Read a study file; keys it leaves out come from `base` (default: the quick preset).

        Example:

        >>> StudyConfig.from_toml("study.toml")  # doctest: +SKIP
        """
        values = runs.read_toml(path, "study file")
        runs.check_known_keys(values, cls, f"study file {path}", word="field")
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
            "models": factory.zoo.get_model_fn,
            "placements": placements.get_placement,
            "dropouts": lambda v: v is None or layers.get_dropout_kind(v),
            "rates": lambda v: layers.check_rate(v, "rate"),
            "norms": layers.get_norm_kind,
            "seeds": _check_seed,
        }
        checks = [(field, check, value) for field, check in per_item.items() for value in getattr(self, field)]
        checks += [
            ("bn_preset", layers.get_bn_preset, self.bn_preset),
            ("epochs", lambda v: training.check_positive_int(v, "epochs"), self.epochs),
            ("batch_size", lambda v: training.check_positive_int(v, "batch_size"), self.batch_size),
            ("optimizer", lambda v: training.make_optimizer(v, 1e-3), self.optimizer),
            ("learning_rate", lambda v: training.make_optimizer("adam", v), self.learning_rate),
            ("validation_split", data.check_validation_split, self.validation_split),
            ("dataset", lambda v: data.load_dataset(v, data_dir=self.data_dir), self.dataset),
        ]
        for field, check, value in checks:
            try:
                check(value)
            except (ValueError, FileNotFoundError) as exc:
                raise ValueError(f"Invalid value in {source} for field `{field}`: {exc}") from None
        dataset = data.load_dataset(self.dataset, data_dir=self.data_dir)
        for config in self.runs():
            try:
                factory.build_model(config.model, input_shape=dataset.input_shape,
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
                placement = placements.get_placement(name)
                rates = self.rates if placement.uses_dropout else [0.0]
                dropouts = [placement.dropout_kind] if placement.dropout_kind else self.dropouts
                for dropout in dropouts:
                    for rate in rates:
                        for norm in self.norms:
                            for seed in self.seeds:
                                config = runs.RunConfig(
                                    model=model, placement=name, dropout=dropout, dropout_rate=rate,
                                    norm=norm, bn_preset=self.bn_preset, dataset=self.dataset, data_dir=self.data_dir,
                                    validation_split=self.validation_split, epochs=self.epochs,
                                    batch_size=self.batch_size, optimizer=self.optimizer,
                                    learning_rate=self.learning_rate, seed=seed,
                                )
                                if config.run_name() not in seen:
                                    seen.add(config.run_name())
                                    grid.append(config)
        return grid


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"Expected non-negative ints. Received: {seed!r}")


def _init_worker(threads):
    """Bound TensorFlow's thread pools so workers do not oversubscribe cores, and die with the study.

    Without the parent-death signal, killing the study process would leave
    its workers training (and exporting) in the background.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def _run_one(config, runs_dir, resume):
    """Train and export one grid point; returns `(name, error or None)`."""
    try:
        runs.run(config, out=runs_dir, resume=resume, verbose=0)
        return config.run_name(), None
    except Exception as exc:  # one failed run must not stop the study
        return config.run_name(), f"{type(exc).__name__}: {exc}"


def _execute(configs, runs_dir, resume, workers):
    """Yield `(name, error)` per run as runs finish.

    One worker trains in this process, so placements and kinds registered
    in it are available; more workers are spawned processes, each importing
    kerasreg afresh (register custom entries in an imported module then).
    """
    if workers == 1:
        for config in configs:
            yield _run_one(config, runs_dir, resume)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker, initargs=(threads,),
    ) as pool:
        futures = [pool.submit(_run_one, c, runs_dir, resume) for c in configs]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def _progress(total, initial):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="run", desc="study", file=sys.stderr,
                dynamic_ncols=True, disable=None)


def default_workers():
    """Parallel training processes used when none are asked for: one per core, at most 4.

    Example:

    >>> 1 <= default_workers() <= 4
    True
    """
    return max(1, min(4, os.cpu_count() or 1))


def run_study(config, out, *, workers=None, resume=False, verbose=1):
    """Run a study grid, skipping exported runs, then write its report.

    With `workers > 1` runs train in separate spawned processes, each with
    TensorFlow limited to `max(1, cpu_count // workers)` threads. A failed run is recorded in
    `failures.jsonl` and the report; the others go on.

    Args:
        config: `StudyConfig`. Validated before anything trains.
        out: str or path. The study folder: `runs/` holds the exports,
            `report.md`, `report.html` and PNG plots go next to it.
        workers: int or None. Parallel training processes; 1 trains in this
            process. Defaults to `None`: `default_workers()`, one per core
            up to 4 (most of a small run is single-threaded graph tracing,
            so processes scale better than threads).
        resume: bool. Continue half-trained runs of a killed study from their
            last completed epoch instead of restarting them. Exported runs
            are skipped either way. Defaults to `False`.
        verbose: int. 1 shows a progress bar over runs. Defaults to `1`.

    Returns:
        `kerasreg.report.StudyReport`.

    Example:

    >>> import kerasreg
    >>> config = kerasreg.StudyConfig(placements=["none", "dropout"], seeds=[0], epochs=2)
    >>> report = kerasreg.run_study(config, "studies/tiny")  # doctest: +SKIP
    """
    workers = default_workers() if workers is None else workers
    training.check_positive_int(workers, "workers")
    config.validate()
    out = pathlib.Path(out)
    runs_dir = out / RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    grid = config.runs()
    todo = [c for c in grid if not (runs_dir / c.run_name() / "manifest.json").exists()]
    if verbose and len(todo) < len(grid):
        print(f"Skipping {len(grid) - len(todo)} run(s) already exported in {runs_dir}.", file=sys.stderr)

    failures = {}
    bar = _progress(len(grid), len(grid) - len(todo)) if verbose else None
    for name, error in _execute(todo, runs_dir, resume, workers):
        if error:
            failures[name] = error
            if bar is not None:
                bar.write(f"run {name} failed: {error}")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    with open(out / FAILURES, "w") as f:
        for name, error in sorted(failures.items()):
            f.write(json.dumps({"run": name, "error": error}) + "\n")
    return report.write_report(out, config, failures=failures)
