"""`StudyConfig`: a grid of runs (models x placements x dropout kinds x rates x norms x seeds), or several such
grids ("arms", e.g. one per depth), and its presets."""

import dataclasses
import importlib.resources

from kerasreg import _backend, _checks
from kerasreg._text import plural
from kerasreg.analysis import contrasts
from kerasreg.analysis.statistics import default_label
from kerasreg.data import check_validation_split, load_dataset
from kerasreg.data.defaults import VALIDATION_SPLIT
from kerasreg.models import build_model, get_dropout_kind, get_model_fn, get_norm_kind, get_placement, kinds
from kerasreg.models.options import architecture_kwargs, check_architecture_options
from kerasreg.models.zoo import list_models
from kerasreg.models.placements import BUILT_INS
from kerasreg.runs import RunConfig, check_known_keys, read_toml
from kerasreg.training import defaults, make_optimizer

EXECUTORS = ("local", "ray")


# Fields an arm may set; the others (dataset, split, ...) are shared by all arms so that seeds pair across them.
ARM_FIELDS = ("models", "placements", "dropouts", "rates", "norms", "seeds", "epochs", "patience", "options",
              "batch_size", "learning_rate", "optimizer", "bn_preset", "reference", "max_seeds",
              "equivalence_margin")
# The reference of an arm's contrasts when the study file names none: BatchNorm alone, where the arm has it.
DEFAULT_REFERENCE = "bn_before_act"
# Placements that show the depth effect of Li et al. (CVPR 2019) in the deep arm: BatchNorm alone (the reference),
# dropout feeding BatchNorm in every block (two ways) and dropout after the last BatchNorm. The full preset's deep
# arm adds the other placements, variance-stable `uout` among them.
DEEP_PLACEMENTS = ["bn_before_act", "bn_act_drop", "drop_before_bn", "head_dropout"]
ALL_PLACEMENTS = [p.name for p in BUILT_INS]
# The quick study's shallow arm, named one by one so that a new built-in placement leaves the published study as it is.
SHALLOW_PLACEMENTS = ["none", "dropout", "bn_before_act", "bn_after_act", "bn_act_drop", "drop_before_bn", "ic",
                      "head_dropout", "uout"]
# Presets kept as study files beside this module (`presets/<name>.toml`), read by `StudyConfig.from_toml`.
PRESET_FILES = importlib.resources.files("kerasreg.study") / "presets"
PRESETS = {
    "quick": {
        "arms": [
            {"name": "shallow", "models": ["mlp"], "placements": SHALLOW_PLACEMENTS, "rates": [0.2],
             "seeds": [0, 1, 2, 3, 4], "epochs": 150, "patience": 15},
            {"name": "deep", "models": ["resnet_small"], "options": {"stages": 3}, "placements": DEEP_PLACEMENTS,
             "rates": [0.5], "seeds": [0, 1, 2, 3, 4], "max_seeds": 10, "epochs": 150, "patience": 8,
             "learning_rate": 3e-3},
        ],
        "dataset": "mnist1d",
    },
    "full": {
        "arms": [
            {"name": "shallow", "models": ["mlp", "cnn1d"], "placements": ALL_PLACEMENTS,
             "rates": [0.1, 0.2, 0.3, 0.5], "seeds": [0, 1, 2, 3, 4], "epochs": 200, "patience": 15},
            {"name": "deep", "models": ["resnet_small"], "options": {"stages": 3}, "placements": ALL_PLACEMENTS,
             "rates": [0.2, 0.5], "seeds": [0, 1, 2, 3, 4], "epochs": 200, "patience": 15},
        ],
        "dataset": "mnist1d",
    },
}


@dataclasses.dataclass
class StudyConfig:
    """A grid of runs. List fields are the grid's axes; the rest applies to every run.

    `dropouts` may hold `None`: each placement's own dropout kind (`standard`,
    or `uout` for the `uout` placement). Placements without dropout are run
    once per seed with rate 0 instead of once per rate. `options` are further
    `build_model` options (e.g. `{"stages": 3}`); `patience` trains each run
    until validation loss has not improved for that many epochs (at most
    `epochs`) and keeps its best epoch.

    The study's answer compares, per arm, one `reference` placement (default:
    `bn_before_act` where the arm has it, else the first placement listed)
    with every other configuration of the arm, paired by seed; these
    contrasts are fixed before any run (`kerasreg.analysis.contrasts`). A
    configuration is called level with the reference only when the interval
    of the difference lies inside `equivalence_margin` (default 0.01: one
    point of accuracy). With `max_seeds` above the number of `seeds`, a
    contrast still undecided after the planned seeds, whose observed
    difference would be decided within `max_seeds` seeds, gets both of its
    configurations trained up to `max_seeds` seeds.

    `arms`, when given, is a list of grids run together: each arm is a dict
    that overrides any of `ARM_FIELDS` (plus an optional `name`), e.g. a
    shallow and a deep architecture with their own placements, rates and
    seeds. Dataset, data directory and validation split are shared, so every
    run of one seed sees the same split and batch order. The other fields
    are the arms' defaults: an arm trains the top-level value of every field
    it does not set. In a study file, a top-level grid field that every arm
    sets is refused, since it would never be trained.

    No list may hold the same value twice (`seeds = [0, 0]`), nor two arms
    the same name.

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
    batch_size: int = defaults.BATCH_SIZE
    learning_rate: float = defaults.LEARNING_RATE
    optimizer: str = defaults.OPTIMIZER
    validation_split: float = VALIDATION_SPLIT
    patience: int = None
    options: dict = None
    reference: str = None
    max_seeds: int = None
    equivalence_margin: float = 0.01
    arms: list = None
    executor: str = "local"
    address: str = None
    backend: str = None  # "jax" or "tensorflow"; None: this process's (jax unless KERAS_BACKEND says otherwise)

    @classmethod
    def preset(cls, name):
        """A built-in preset: `quick` (the README's main job), `full`, or a study file shipped with kerasreg.

        The shipped files (`digits`: the deep arm on real handwritten digits)
        are ordinary study files in `kerasreg/study/presets/`; fields they
        leave out take `StudyConfig`'s defaults. `preset_names()` lists all.

        Example:

        >>> [arm.rates for arm in StudyConfig.preset("full").arm_configs()]
        [[0.1, 0.2, 0.3, 0.5], [0.2, 0.5]]
        >>> StudyConfig.preset("digits").dataset
        'digits'
        """
        _checks.one_of(name, preset_names(), "preset")
        if name in PRESETS:
            return cls(**PRESETS[name])
        with importlib.resources.as_file(PRESET_FILES / f"{name}.toml") as path:
            return cls.from_toml(path, base=cls(), validate=False)  # run_study validates, as for the other presets

    @classmethod
    def from_toml(cls, path, base=None, *, validate=True):
        """Read a study file; keys it leaves out come from `base` (default: the quick preset).

        With `validate=False` only the file's own form is checked (known
        fields, arms' defaults used); `run_study` validates the rest.

        Example:

        >>> StudyConfig.from_toml("study.toml")  # doctest: +SKIP
        """
        values = read_toml(path, "study file")
        check_known_keys(values, cls, f"study file {path}", word="field")
        base = base or cls.preset("quick")
        if "arms" not in values and set(values) & set(ARM_FIELDS):
            values["arms"] = None  # a file that sets the grid itself describes one grid, not the preset's arms
        _check_defaults_used(values, f"study file {path}")
        config = dataclasses.replace(base, **values)
        if validate:
            config.validate(source=str(path))
        return config

    def arm_configs(self):
        """One `StudyConfig` per arm (just `[self]` without arms).

        Example:

        >>> [a.models for a in StudyConfig.preset("quick").arm_configs()]
        [['mlp'], ['resnet_small']]
        """
        if not self.arms:
            return [self]
        return [dataclasses.replace(self, arms=None, **{k: v for k, v in arm.items() if k != "name"})
                for arm in self.arms]

    def arm_names(self):
        """Names of the arms (`"arm <i>"` where an arm has none)."""
        return [arm.get("name") or f"arm {i}" for i, arm in enumerate(self.arms or [{"name": "grid"}], start=1)]

    def describe(self):
        """One paragraph describing the grid(s), for reports.

        Example:

        >>> StudyConfig(placements=["none"], seeds=[0], epochs=2).describe()  # doctest: +ELLIPSIS
        'Dataset `mnist1d`; models mlp; 1 placement; ...'
        """
        parts = []
        for name, arm in zip(self.arm_names(), self.arm_configs()):
            options = "".join(f", {k}={v}" for k, v in (arm.options or {}).items())
            stop = (f"up to {arm.epochs} epochs, early stopping on validation loss (patience {arm.patience}, "
                    "best epoch kept)" if arm.patience else f"{arm.epochs} epochs")
            text = (f"models {', '.join(arm.models)}{options}; {plural(len(arm.placements), 'placement')}; "
                    f"dropout rates {', '.join(f'{r:g}' for r in arm.rates)}; norms {', '.join(arm.norms)}; "
                    f"seeds {', '.join(map(str, arm.seeds))}; {stop}, batch {arm.batch_size}, "
                    f"{arm.optimizer} lr {arm.learning_rate:g}.")
            parts.append(f"{name}: {text}" if self.arms else text)
        return f"Dataset `{self.dataset}`; " + " ".join(parts)

    def validate(self, source="study"):
        """Check every field and every grid point before anything trains.

        Errors name the field, e.g. "Invalid value in study for field `rates`".
        """
        if self.arms is not None:
            self._validate_arms(source)
            for name, arm in zip(self.arm_names(), self.arm_configs()):
                arm.validate(source=f"{source}, arm {name!r},")
            self.runs()  # two arms must not produce one run name with different settings
            return
        for field in ("models", "placements", "dropouts", "rates", "norms", "seeds"):
            value = getattr(self, field)
            if not isinstance(value, list) or not value:
                raise ValueError(f"Invalid value in {source} for field `{field}`: "
                                 f"expected a non-empty list. Received: {field}={value!r}")
            _check_no_duplicates(value, field, source)
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
            ("patience", lambda v: v is None or _checks.positive_int(v, "patience"), self.patience),
            ("options", lambda v: _check_options(v, self.models), self.options),
            ("reference", lambda v: v is None or _checks.one_of(v, tuple(self.placements), "reference"),
             self.reference),
            ("max_seeds", lambda v: v is None or _check_max_seeds(v, self.seeds), self.max_seeds),
            ("equivalence_margin", lambda v: _check_margin(v), self.equivalence_margin),
            ("executor", lambda v: _checks.one_of(v, EXECUTORS, "executor"), self.executor),
            ("backend", lambda v: v is None or _backend.check_backend(v), self.backend),
            ("dataset", lambda v: load_dataset(v, data_dir=self.data_dir), self.dataset),
        ]
        for field, check, value in checks:
            try:
                check(value)
            except (ValueError, FileNotFoundError) as exc:
                raise ValueError(f"Invalid value in {source} for field `{field}`: {exc}") from None
        dataset = load_dataset(self.dataset, data_dir=self.data_dir)
        built = set()
        for config in self.runs():
            kwargs = config.model_kwargs()
            key = (config.model, repr(sorted(kwargs.items())))
            if key in built:  # the seeds of a grid point build the same network
                continue
            built.add(key)
            try:
                build_model(config.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes, **kwargs)
            except ValueError as exc:
                raise ValueError(
                    f"Invalid combination of models, placements, dropouts and norms in {source}: "
                    f"run {config.run_name()}: {exc}"
                ) from None

    def _validate_arms(self, source):
        if not isinstance(self.arms, list) or not self.arms or not all(isinstance(a, dict) for a in self.arms):
            raise ValueError(f"Invalid value in {source} for field `arms`: expected a non-empty list of tables "
                             f"(dicts). Received: arms={self.arms!r}")
        for i, arm in enumerate(self.arms, start=1):
            unknown = sorted(set(arm) - set(ARM_FIELDS) - {"name"})
            if unknown:
                raise ValueError(f"Unknown field(s) {', '.join(map(repr, unknown))} in {source}, arm {i}. "
                                 f"An arm may set: name, {', '.join(ARM_FIELDS)}.")
        _check_no_duplicates(self.arm_names(), "arms", source, what="arm name")

    def contrast_arms(self):
        """Each arm's fixed contrasts, seeds and margin, as `kerasreg.analysis.contrasts.Arm`.

        Example:

        >>> [(a.name, a.references, a.max_seeds) for a in StudyConfig.preset("quick").contrast_arms()][1]
        ('deep', {'resnet_small': 'bn_before_act'}, 10)
        """
        arms = []
        for name, arm in zip(self.arm_names(), self.arm_configs()):
            reference = arm.reference or (DEFAULT_REFERENCE if DEFAULT_REFERENCE in arm.placements
                                          else arm.placements[0])
            labels = {}
            for run in arm.runs():
                labels.setdefault(run.model, [])
                if _label(run) not in labels[run.model]:
                    labels[run.model].append(_label(run))
            references = {model: next(_label(r) for r in arm.runs() if r.model == model and r.placement == reference)
                          for model in labels}
            arms.append(contrasts.Arm(name, references, labels, tuple(arm.seeds),
                                      arm.max_seeds or len(arm.seeds), arm.equivalence_margin))
        return arms

    def added_runs(self, rows):
        """The runs that seeds until decided add, given the rows of the planned runs (`compare` rows).

        Example:

        >>> StudyConfig(placements=["none", "bn_before_act"], seeds=[0, 1]).added_runs([])
        []
        """
        added = []
        for arm, design in zip(self.arm_configs(), self.contrast_arms()):
            wanted = contrasts.seeds_to_add(design, rows)
            for run in arm.runs():
                if run.seed == arm.seeds[0]:
                    added += [dataclasses.replace(run, seed=seed) for seed in wanted.get(run.model, {}).get(
                        _label(run), ())]
        return added

    def runs(self):
        """The grid as a list of `RunConfig`, without duplicates (all arms, in order).

        Example:

        >>> [c.run_name() for c in StudyConfig(placements=["none"], seeds=[0], rates=[0.1, 0.5]).runs()]
        ['mlp-none-nodrop-seed0']
        """
        if self.arms:
            grid, seen = [], {}
            for arm in self.arm_configs():
                for config in arm.runs():
                    name = config.run_name()
                    if name in seen and seen[name] != config:
                        raise ValueError(f"Two arms of the study produce run {name!r} with different settings; "
                                         "give the arms different models or placements.")
                    if name not in seen:
                        seen[name] = config
                        grid.append(config)
            return grid
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
                                    learning_rate=self.learning_rate, seed=seed, patience=self.patience,
                                    backend=self.backend, options=self.options,
                                )
                                if config.run_name() not in seen:
                                    seen.add(config.run_name())
                                    grid.append(config)
        return grid


def preset_names():
    """The names `StudyConfig.preset` accepts: the presets defined here, then the shipped study files.

    Example:

    >>> preset_names()
    ('quick', 'full', 'digits', 'mnist5k')
    """
    files = sorted(entry.name.removesuffix(".toml") for entry in PRESET_FILES.iterdir() if entry.name.endswith(".toml"))
    return tuple(PRESETS) + tuple(files)


def _label(run):
    """The configuration's label in the report (`statistics.default_label` of its row)."""
    dropout = run.dropout or get_placement(run.placement).dropout_kind or "standard"
    return default_label({"placement": run.placement, "dropout": dropout, "dropout_rate": run.dropout_rate,
                          "norm": run.norm})


def _check_max_seeds(value, seeds):
    _checks.positive_int(value, "max_seeds")
    if isinstance(seeds, list) and value < len(seeds):
        raise ValueError(f"max_seeds={value} is below the {len(seeds)} planned seeds; give at least {len(seeds)} "
                         "(or leave it out: no seeds are added).")


def _check_margin(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise _checks.invalid("equivalence_margin", "a number between 0 and 1 (0.01: one point of accuracy)",
                              value)


def _check_no_duplicates(values, field, source, what="value"):
    repeated = [v for i, v in enumerate(values) if v in values[:i]]
    if repeated:
        raise ValueError(f"Invalid value in {source} for field `{field}`: {what}(s) "
                         f"{', '.join(map(repr, dict.fromkeys(repeated)))} given more than once; "
                         f"list each once. Received: {field}={values!r}")


def _check_defaults_used(values, source):
    """Refuse top-level grid fields of a study file that every arm overrides: they would never be trained."""
    arms = values.get("arms")
    if not isinstance(arms, list) or not arms or not all(isinstance(a, dict) for a in arms):
        return  # no arms, or malformed ones that `validate` names
    unused = [field for field in ARM_FIELDS if field in values and all(field in arm for arm in arms)]
    if unused:
        raise ValueError(
            f"Top-level field(s) {', '.join(f'`{f}`' for f in unused)} in {source} are set by every arm "
            "as well, so they would never be trained. Top-level fields are the defaults of arms that do "
            "not set them: remove them from the top level, or from the arms that should use them."
        )


def _check_options(options, models):
    if options is not None and not isinstance(options, dict):
        raise _checks.invalid("options", "a table (dict) of build_model options or None", options)
    for model in models if isinstance(models, list) else ():
        if model in list_models():  # every model of the grid is built with every option
            check_architecture_options(model, options or {})
            architecture_kwargs(model, options or {})
