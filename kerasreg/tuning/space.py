"""The search space of a placement search, drawn from kerasreg's registries.

Each axis of `build_model` is a hyperparameter: the placement, the dropout
kind, the dropout rate, the norm kind, the BatchNorm preset and every option
of the architecture. Defaults come from the registries, so a placement or an
architecture registered a moment ago is searchable at once. Axes given as
text are fnmatch patterns over a registry (`"bn_*"`, `"*"`).

The rate and the dropout kind are declared inside a KerasTuner conditional
scope: they exist only for placements that use dropout (and the kind only
for placements that do not imply their own, as `uout` does), so a trial of
`bn_before_act` is not told apart from another by a rate it never used.

This module imports neither Keras nor KerasTuner: it only talks to the `hp`
object it is given.
"""

from __future__ import annotations

import dataclasses
import fnmatch

from kerasreg import _checks
from kerasreg.models import kinds, zoo
from kerasreg.models import placements as placement_registry
from kerasreg.models.options import DEFAULTS, architecture_kwargs, check_architecture_options

DEFAULT_RATES = {"min": 0.1, "max": 0.5, "step": 0.1}


def _registry_choices(value, listing, getter, argument, default):
    """Choices for one registry axis: `None` -> `default`, text -> fnmatch over the registry, else each checked."""
    if value is None:
        return tuple(default)
    if isinstance(value, str):
        chosen = tuple(listing(value))
        if not chosen:
            raise _checks.invalid(argument, f"a pattern matching at least one of {', '.join(listing())}", value)
        return chosen
    if not isinstance(value, (list, tuple)) or not value:
        raise _checks.invalid(argument, "a non-empty list of names or an fnmatch pattern (empty search space)",
                              value)
    for name in value:
        getter(name)
    return tuple(dict.fromkeys(value))


def _list_bn_presets(pattern="*"):
    return sorted(name for name in kinds.BN_PRESETS if fnmatch.fnmatch(name, pattern))


def _rates(value):
    if value is None:
        return dict(DEFAULT_RATES)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"min", "max", "step"})
        if unknown or not {"min", "max"} <= set(value):
            raise _checks.invalid("rates", "a list of rates or a range {min, max, step}", value)
        low, high = _checks.rate(value["min"], "rates.min"), _checks.rate(value["max"], "rates.max")
        if low >= high:
            raise _checks.invalid("rates", "a range with min < max", value)
        step = value.get("step")
        return {"min": low, "max": high, "step": None if step is None else _checks.positive_float(step, "rates.step")}
    if not isinstance(value, (list, tuple)) or not value:
        raise _checks.invalid("rates", "a non-empty list of rates or a range {min, max, step} (empty search space)",
                              value)
    return tuple(dict.fromkeys(_checks.rate(r, "rates") for r in value))


def _encode(value):
    """A KerasTuner choice value: ints, floats, text and bools pass; sequences become text such as `64,64`."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return value


def _options(architecture, value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _checks.invalid("options", "a dict of option name -> list of choices", value)
    check_architecture_options(architecture, value)
    chosen = {}
    for name, choices in value.items():
        choices = choices if isinstance(choices, list) else [choices]
        if not choices:
            raise _checks.invalid(f"options.{name}", "a non-empty list of choices (empty search space)", choices)
        encoded = tuple(dict.fromkeys(_encode(c) for c in choices))
        if len({type(c) for c in encoded}) > 1:
            encoded = tuple(str(c) for c in encoded)  # KerasTuner wants one type per choice
        for choice in encoded:  # text is parsed by the option's type, as on the command line
            architecture_kwargs(architecture, {name: str(choice)})
        chosen[name] = encoded
    return chosen


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The axes a placement search varies, each a tuple of choices (rates may be a range).

    Build one with `search_space(...)`; `declare(hp)` turns it into
    KerasTuner hyperparameters and returns the `build_model` keyword
    arguments of the values `hp` holds.

    Example:

    >>> space = search_space("mlp", placements=["none", "dropout"], rates=[0.1, 0.3])
    >>> space.placements, space.rates
    (('none', 'dropout'), (0.1, 0.3))
    """

    architecture: str
    placements: tuple
    rates: tuple | dict
    dropouts: tuple
    norms: tuple
    bn_presets: tuple
    options: dict

    def declare(self, hp):
        """Declare the axes on a `keras_tuner.HyperParameters`; returns `build_model` kwargs for its values.

        Example:

        >>> import keras_tuner
        >>> search_space("mlp", placements=["none"]).declare(keras_tuner.HyperParameters())["placement"]
        'none'
        """
        placement = hp.Choice("placement", list(self.placements))
        with_dropout = [p for p in self.placements if placement_registry.get_placement(p).uses_dropout]
        kwargs = {"placement": placement, "dropout_rate": 0.0}
        if with_dropout:
            with hp.conditional_scope("placement", with_dropout):
                if isinstance(self.rates, dict):
                    rate = hp.Float("dropout_rate", self.rates["min"], self.rates["max"], step=self.rates["step"])
                else:
                    rate = hp.Choice("dropout_rate", list(self.rates))
            if placement in with_dropout:
                kwargs["dropout_rate"] = rate
        free_kind = [p for p in with_dropout if not placement_registry.get_placement(p).dropout_kind]
        if self.dropouts and free_kind:
            with hp.conditional_scope("placement", free_kind):
                dropout = hp.Choice("dropout", list(self.dropouts))
            if placement in free_kind:
                kwargs["dropout"] = dropout
        kwargs["norm"] = hp.Choice("norm", list(self.norms))
        kwargs["bn_preset"] = hp.Choice("bn_preset", list(self.bn_presets))
        # Text choices (sequences such as `64,64`) are parsed by the option's type, as on the command line.
        kwargs.update(architecture_kwargs(self.architecture, {
            name: hp.Choice(name, list(choices)) for name, choices in self.options.items()}))
        return kwargs

    def check(self, input_shape, num_classes):
        """Build one small probe model per dropout kind, norm kind and option value; raise on the first that fails.

        A kind that cannot serve this architecture (`spatial` dropout in an
        `mlp`) is refused here, before any trial, naming the value.
        """
        from kerasreg.models import build_model

        drop = next((p for p in self.placements if placement_registry.get_placement(p).uses_dropout
                     and not placement_registry.get_placement(p).dropout_kind), None)
        norm = next((p for p in self.placements if placement_registry.get_placement(p).uses_norm), None)
        probes = [("dropouts", kind, {"placement": drop, "dropout": kind}) for kind in self.dropouts if drop]
        probes += [("norms", kind, {"placement": norm, "norm": kind}) for kind in self.norms if norm]
        probes += [(f"options.{name}", value, {name: value})
                   for name, choices in self.options.items() for value in choices]
        for axis, value, kwargs in probes:
            placement = kwargs.pop("placement", self.placements[0])
            try:
                build_model(self.architecture, placement=placement, input_shape=input_shape,
                            num_classes=num_classes, **architecture_kwargs(self.architecture, kwargs))
            except ValueError as exc:
                raise ValueError(f"Invalid value in the search space for `{axis}`: {value!r} cannot build "
                                 f"{self.architecture!r} ({exc}). Leave it out of the search.") from None

    def describe(self):
        """The space as plain JSON data (for manifests, `tune.json` and tracking).

        Example:

        >>> search_space("mlp", placements=["none"]).describe()["placements"]
        ['none']
        """
        return {
            "architecture": self.architecture,
            "placements": list(self.placements),
            "rates": dict(self.rates) if isinstance(self.rates, dict) else list(self.rates),
            "dropouts": list(self.dropouts) or "the placement's own kind",
            "norms": list(self.norms),
            "bn_presets": list(self.bn_presets),
            "options": {name: list(choices) for name, choices in self.options.items()},
        }


# The axes by name: the keyword arguments of `search_space` and `PlacementHyperModel`, the space of a `TuneConfig`.
SPACE_FIELDS = tuple(field.name for field in dataclasses.fields(SearchSpace) if field.name != "architecture")


def search_space(
    architecture: str,
    *,
    placements: list | str | None = None,
    rates: list | dict | None = None,
    dropouts: list | str | None = None,
    norms: list | str | None = None,
    bn_presets: list | str | None = None,
    options: dict | None = None,
) -> SearchSpace:
    """A checked `SearchSpace` for `architecture`; every name is looked up in its registry now.

    Args:
        architecture: str. A registered model, see `list_models()`.
        placements: list, fnmatch pattern or None. Defaults to every
            registered placement.
        rates: list of rates (choices), a range `{"min", "max", "step"}`, or
            None. Defaults to `0.1` to `0.5` in steps of `0.1`.
        dropouts: list, fnmatch pattern or None. Dropout kinds; `None` keeps
            each placement's own kind (`standard`, `uout` for `uout`).
        norms: list, fnmatch pattern or None. Defaults to `["batch"]`.
        bn_presets: list, fnmatch pattern or None. Defaults to `["keras"]`.
        options: dict or None. Architecture option -> list of choices, e.g.
            `{"widths": [[64, 64], [100, 100]]}`. Defaults to the
            architecture's own defaults (not searched).

    Returns:
        `SearchSpace`.

    Raises:
        ValueError: an unknown name (with the closest valid one), a pattern
            matching nothing or an empty list (an empty search space).

    Example:

    >>> search_space("mlp", placements="bn_*").placements
    ('bn_act_drop', 'bn_after_act', 'bn_before_act')
    """
    zoo.get_model_fn(architecture)
    return SearchSpace(
        architecture=architecture,
        placements=_registry_choices(placements, placement_registry.list_placements,
                                     placement_registry.get_placement, "placements",
                                     placement_registry.list_placements()),
        rates=_rates(rates),
        dropouts=_registry_choices(dropouts, kinds.list_dropout_kinds, kinds.get_dropout_kind, "dropouts", ()),
        norms=_registry_choices(norms, kinds.list_norm_kinds, kinds.get_norm_kind, "norms", [DEFAULTS["norm"]]),
        bn_presets=_registry_choices(bn_presets, _list_bn_presets, kinds.get_bn_preset, "bn_presets",
                                     [DEFAULTS["bn_preset"]]),
        options=_options(architecture, options),
    )

