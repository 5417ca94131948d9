"""build_model: architecture x placement x dropout kind/rate x norm kind -> keras.Model.

This is the one place where a placement is applied: `BlockBuilder` turns a
placement's token order into layers, and `build_model` assembles the body
an architecture returns into a Sequential or functional model that carries
its kerasreg configuration through `.keras` save and load.

Importing this module registers `ZooSequential`, `ZooFunctional` and `Uout`
with Keras, so `.keras` files written by kerasreg load with safe mode on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras

from kerasreg import _backend, _checks
from kerasreg.models import kinds, placements, uout, zoo  # noqa: F401  (uout: registers Uout)
from kerasreg.models.options import DEFAULTS, RECORDED


APIS = ("functional", "sequential")


class BlockBuilder:
    """Makes the layers of one block in the order a placement prescribes.

    Architectures call `dense`, `conv`, `flatten` and `reshape`; the
    builder names layers `<block>_<token>` so Sequential and functional
    builds have identical layer names, orders and weights.

    Example:

    >>> b = BlockBuilder(placements.get_placement("bn_act_drop"), dropout="standard",
    ...                  dropout_rate=0.2, norm="batch", bn_preset="keras", seed=0)
    >>> [l.name for l in b.dense("block1", 8)]
    ['block1_weight', 'block1_norm', 'block1_act', 'block1_drop']
    """

    def __init__(self, placement, *, dropout, dropout_rate, norm, bn_preset, seed, activation="relu"):
        self.placement = placement
        self.dropout = kinds.get_dropout_kind(dropout)
        self.dropout_rate = dropout_rate
        self.norm = kinds.get_norm_kind(norm)
        self.bn_preset = bn_preset
        self.activation = activation
        self._seed = seed
        self._draws = 0
        # Channels entering the next block: a norm placed before the weight
        # (e.g. "norm act weight") normalises these, not the weight's output.
        self._in_channels = None

    def next_seed(self):
        """A distinct seed per random layer, or None when unseeded."""
        if self._seed is None:
            return None
        self._draws += 1
        return self._seed + self._draws

    def dropout_layer(self, name, rank):
        """The dropout layer, or None when the rate is 0."""
        if self.dropout_rate == 0:
            return None
        return self.dropout(self.dropout_rate, seed=self.next_seed(), rank=rank, name=name)

    def _block(self, prefix, weight, channels, rank):
        block = self.placement.block
        norm_first = "norm" in block and block.index("norm") < block.index("weight")
        norm_channels = (self._in_channels or channels) if norm_first else channels
        made = {
            "weight": lambda: weight,
            "norm": lambda: self.norm(norm_channels, bn_preset=self.bn_preset, name=f"{prefix}_norm"),
            "act": lambda: keras.layers.Activation(self.activation, name=f"{prefix}_act"),
            "drop": lambda: self.dropout_layer(f"{prefix}_drop", rank),
        }
        layers = [made[token]() for token in block]
        self._in_channels = channels
        return [layer for layer in layers if layer is not None]

    def dense(self, prefix, units):
        """A block around `Dense(units)`."""
        weight = keras.layers.Dense(
            units, name=f"{prefix}_weight",
            kernel_initializer=keras.initializers.GlorotUniform(seed=self.next_seed()),
        )
        return self._block(prefix, weight, units, rank=2)

    def conv(self, prefix, filters, *, kernel_size, strides, dims):
        """A block around `Conv1D`/`Conv2D(filters)` with "same" padding."""
        conv = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D}[dims]
        weight = conv(
            filters, kernel_size, strides=strides, padding="same", name=f"{prefix}_weight",
            kernel_initializer=keras.initializers.GlorotUniform(seed=self.next_seed()),
        )
        return self._block(prefix, weight, filters, rank=dims + 2)

    def flatten(self, input_shape):
        """A Flatten layer when the input is not already a vector."""
        self._in_channels = math.prod(input_shape)
        return [keras.layers.Flatten(name="flatten")] if len(input_shape) > 1 else []

    def reshape(self, input_shape, target_shape):
        """A Reshape layer when the input lacks the channel axis."""
        self._in_channels = target_shape[-1]
        if tuple(input_shape) == tuple(target_shape):
            return []
        return [keras.layers.Reshape(target_shape, name="reshape")]

    def head(self, num_classes):
        """Optional head-only dropout, then the softmax classifier."""
        head = []
        if self.placement.dropout_scope == "head_only":
            head.append(self.dropout_layer("head_drop", rank=2))
        head.append(keras.layers.Dense(
            num_classes, activation="softmax", name="head",
            kernel_initializer=keras.initializers.GlorotUniform(seed=self.next_seed()),
        ))
        return [layer for layer in head if layer is not None]


class _CarriesKerasregConfig:
    """Adds `kerasreg_config` to a Keras model's config so `.keras` files keep it."""

    def get_config(self):
        return {**super().get_config(), "kerasreg_config": self.kerasreg_config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        kerasreg_config = config.pop("kerasreg_config", None)
        model = super().from_config(config, custom_objects=custom_objects)
        model.kerasreg_config = kerasreg_config
        return model


@keras.saving.register_keras_serializable(package="kerasreg")
class ZooSequential(_CarriesKerasregConfig, keras.Sequential):
    """A `keras.Sequential` that remembers how kerasreg built it."""

    def __init__(self, layers=None, kerasreg_config=None, **kwargs):
        super().__init__(layers, **kwargs)
        self.kerasreg_config = kerasreg_config


@keras.saving.register_keras_serializable(package="kerasreg")
class ZooFunctional(_CarriesKerasregConfig, keras.Model):
    """A functional `keras.Model` that remembers how kerasreg built it."""

    def __init__(self, *args, kerasreg_config=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kerasreg_config = kerasreg_config


def _check_shape(input_shape, num_classes):
    shape = (input_shape,) if _checks.is_int(input_shape) else input_shape
    try:
        shape = tuple(shape)
    except TypeError:
        shape = ()
    if not shape or not all(_checks.is_int(d) and d >= 1 for d in shape):
        raise _checks.invalid("input_shape", "a tuple of positive ints without the batch axis, e.g. (40,)",
                              input_shape)
    if not _checks.is_int(num_classes) or num_classes < 2:
        raise _checks.invalid("num_classes", "an int >= 2", num_classes)
    return tuple(int(d) for d in shape), int(num_classes)


# About 1 GiB of float32 weights: more is a typo (e.g. a missing comma in --widths), not a study model.
MAX_WEIGHTS = 2**28


def _check_sizes(input_shape, num_classes, arch_kwargs):
    """Layer sizes are positive ints whose weights fit the budget, checked before any is allocated."""
    for key, per_unit in (("widths", 1), ("filters", 9)):  # 9: a 3x3 kernel
        if key not in arch_kwargs:
            continue
        value = arch_kwargs[key]
        sizes = (value,) if _checks.is_int(value) else value
        try:
            sizes = tuple(sizes)
        except TypeError:
            sizes = ()
        if not sizes or isinstance(value, str) or not all(_checks.is_int(s) and s >= 1 for s in sizes):
            raise _checks.invalid(key, "positive ints, e.g. (100, 100)", value)
        fan_in = math.prod(input_shape) if key == "widths" else input_shape[-1] * per_unit
        weights = 0
        for size in (*sizes, num_classes):
            weights += fan_in * size
            fan_in = size * per_unit
        if weights > MAX_WEIGHTS:
            raise _checks.invalid(
                key, f"sizes giving at most {MAX_WEIGHTS:,} weights (about 1 GiB of float32); "
                f"these give about {weights:,}", value)


def _resolve_dropout_kind(placement, dropout):
    if dropout is None:
        return placement.dropout_kind or "standard"
    if placement.dropout_kind and dropout != placement.dropout_kind:
        raise ValueError(
            f"Placement {placement.name!r} implies dropout={placement.dropout_kind!r}. "
            f"Received: dropout={dropout!r}. Leave `dropout` unset, or pick another placement."
        )
    kinds.get_dropout_kind(dropout)
    return dropout


def _check_arch_kwargs(name, arch_kwargs):
    valid = zoo.model_options(name)
    unknown = sorted(set(arch_kwargs) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown option(s) {', '.join(unknown)} for model {name!r}. "
            f"Valid options: {', '.join(valid) or 'none'}."
        )


def _assemble(name, body, head, input_shape, api, kerasreg_config):
    inputs = keras.Input(shape=input_shape, name="inputs")
    if api == "sequential":
        if any(isinstance(item, zoo.Residual) for item in body):
            raise ValueError(
                f"Model {name!r} has residual connections, which a Sequential model "
                "cannot hold. Use api='functional'."
            )
        return ZooSequential([inputs, *body, *head], name=name, kerasreg_config=kerasreg_config)
    x = inputs
    for item in body:
        if isinstance(item, zoo.Residual):
            y = x
            for layer in item.branch:
                y = layer(y)
            if not item.shortcut:
                x = keras.layers.Add(name=f"{item.name}_add")([x, y])
                continue
            for layer in item.shortcut:
                x = layer(x)
            # The projection as the addition's second input is listed after the branch in `model.layers`
            # (Keras orders layers of equal depth by the inputs' order), so `describe` shows it before the sum.
            x = keras.layers.Add(name=f"{item.name}_add")([y, x])
        else:
            x = item(x)
    for layer in head:
        x = layer(x)
    return ZooFunctional(inputs=inputs, outputs=x, name=name, kerasreg_config=kerasreg_config)


@_backend.with_jax_settings
def build_model(
    name: str,
    *,
    placement: str | placements.Placement = DEFAULTS["placement"],
    dropout: str | None = DEFAULTS["dropout"],
    dropout_rate: float = DEFAULTS["dropout_rate"],
    norm: str = DEFAULTS["norm"],
    bn_preset: str = DEFAULTS["bn_preset"],
    api: str = DEFAULTS["api"],
    input_shape: int | Sequence[int],
    num_classes: int,
    seed: int | None = None,
    **arch_kwargs: Any,
) -> keras.Model:
    """Build a zoo architecture with a Dropout/normalisation placement.

    Training vs inference: the returned model contains Dropout (active only
    when called with `training=True`, e.g. inside `fit`) and normalisation
    layers (BatchNormalization uses batch statistics in training and its
    moving averages in inference). Where they sit relative to each other is
    what `placement` chooses.

    Args:
        name: str. Architecture name, see `list_models()`.
        placement: str or `Placement`. See `list_placements()`.
            Defaults to `"bn_act_drop"`.
        dropout: str or None. Dropout kind, see `list_dropout_kinds()`.
            Defaults to the placement's own kind (`"uout"` for the `uout`
            placement), else `"standard"`.
        dropout_rate: float in [0, 1). Fraction dropped (as in Keras and
            PyTorch); 0 adds no dropout layer. Defaults to `0.2`.
        norm: str. Norm kind, see `list_norm_kinds()`. Defaults to `"batch"`.
        bn_preset: str. `"keras"` (momentum 0.99, epsilon 1e-3) or
            `"torch"` (momentum 0.9, epsilon 1e-5, PyTorch's defaults).
            Defaults to `"keras"`.
        api: str. `"functional"` or `"sequential"`. Defaults to `"functional"`.
        input_shape: tuple of int. Input shape without the batch axis.
        num_classes: int. Number of classes of the softmax head.
        seed: int or None. Seeds initializers and random layers. Defaults to `None`.
        **arch_kwargs: options of the architecture, e.g. `widths=(64, 64)`
            for `mlp`; see `model_options(name)`. `None` values are dropped
            so the architecture's defaults apply.

    Returns:
        A `keras.Model` (uncompiled) with a `kerasreg_config` dict.

    Example:

    >>> import kerasreg
    >>> model = kerasreg.build_model("mlp", placement="bn_before_act", dropout_rate=0.2,
    ...                              input_shape=(40,), num_classes=10)
    >>> model.output_shape
    (None, 10)
    """
    fn = zoo.get_model_fn(name)
    placement = placements.get_placement(placement)
    dropout = _resolve_dropout_kind(placement, dropout)
    dropout_rate = _checks.rate(dropout_rate, "dropout_rate")
    kinds.get_norm_kind(norm)
    kinds.get_bn_preset(bn_preset)
    _checks.one_of(api, APIS, "api")
    input_shape, num_classes = _check_shape(input_shape, num_classes)
    seed = _checks.seed(seed, allow_none=True)
    arch_kwargs = {k: v for k, v in arch_kwargs.items() if v is not None}
    _check_arch_kwargs(name, arch_kwargs)
    _check_sizes(input_shape, num_classes, arch_kwargs)

    blocks = BlockBuilder(
        placement, dropout=dropout, dropout_rate=dropout_rate, norm=norm,
        bn_preset=bn_preset, seed=seed,
    )
    body = fn(blocks, input_shape=input_shape, **arch_kwargs)
    head = blocks.head(num_classes)

    options = {**zoo.model_options(name), **arch_kwargs}
    resolved = {
        "placement": placement.name, "block": list(placement.block), "dropout_scope": placement.dropout_scope,
        "dropout": dropout, "dropout_rate": dropout_rate, "norm": norm, "bn_preset": bn_preset, "api": api,
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
    }
    kerasreg_config = {
        "model": name,
        **{key: resolved[key] for key in RECORDED},
        "input_shape": list(input_shape),
        "num_classes": num_classes,
        "seed": seed,
    }
    return _assemble(name, body, head, input_shape, api, kerasreg_config)


def _layer_label(layer):
    """Short text of one layer, e.g. `Dense(100)` or `Dropout(0.2)`."""
    kind = type(layer).__name__
    if isinstance(layer, keras.layers.Dense):
        return f"Dense({layer.units})"
    if hasattr(layer, "filters") and hasattr(layer, "kernel_size"):
        return f"{kind}({layer.filters}, {'x'.join(map(str, layer.kernel_size))})"
    if isinstance(layer, keras.layers.BatchNormalization):
        return "BatchNorm"
    if isinstance(layer, keras.layers.LayerNormalization):
        return "LayerNorm"
    if isinstance(layer, keras.layers.GroupNormalization):
        return f"GroupNorm({layer.groups})"
    if isinstance(layer, keras.layers.Activation):
        names = {"relu": "ReLU", "softmax": "Softmax"}
        fn = keras.activations.serialize(layer.activation)
        fn = fn if isinstance(fn, str) else layer.activation.__name__
        return names.get(fn, fn)
    if hasattr(layer, "rate"):
        return f"{kind}({layer.rate:g})"
    if isinstance(layer, keras.layers.Add):
        return "+ skip"
    return kind


def describe(model: keras.Model) -> str:
    """A readable block structure of a model, read from its layers.

    Layers are grouped by the block prefix of their names; repeated
    identical blocks are shown once with a count.

    Args:
        model: keras.Model. Any model; kerasreg models get block grouping.

    Returns:
        str, e.g. `Dense(100) > BatchNorm > ReLU > Dropout(0.2)  x2 > Dense(10)`.

    Example:

    >>> import kerasreg
    >>> m = kerasreg.build_model("mlp", input_shape=(40,), num_classes=10)
    >>> kerasreg.describe(m)
    'Dense(100) > BatchNorm > ReLU > Dropout(0.2)  x2 > Dense(10)'
    """
    # A residual branch `Residual("res1", ...)` ends in an Add layer `res1_add`; its blocks
    # (`res1a`, `res1b`, ...) are shown as one group so repeated branches collapse to a count.
    residuals = [layer.name[:-len("_add")] for layer in model.layers
                 if isinstance(layer, keras.layers.Add) and layer.name.endswith("_add")]
    groups = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        prefix = layer.name.rsplit("_", 1)[0] if "_" in layer.name else layer.name
        prefix = max((name for name in residuals if prefix.startswith(name)), key=len, default=prefix)
        if groups and groups[-1][0] == prefix:
            groups[-1][1].append(_layer_label(layer))
        else:
            groups.append((prefix, [_layer_label(layer)]))
    parts = []
    for _, labels in groups:
        text = " > ".join(labels)
        if parts and parts[-1][0] == text:
            parts[-1][1] += 1
        else:
            parts.append([text, 1])
    return " > ".join(text if n == 1 else f"{text}  x{n}" for text, n in parts)

