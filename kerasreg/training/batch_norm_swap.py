"""`set_batch_norm`: a copy of a model with every BatchNormalization given a new momentum or replaced by GroupNorm.

The two fixes the BatchNorm audit names for statistics that cannot keep up:
a lower momentum (the moving statistics then average over fewer, more
recent batches: `1 / (1 - momentum)` of them), or GroupNormalization (Wu &
He, "Group Normalization", ECCV 2018), which normalises each example over
groups of channels and so does not depend on the batch at all.
"""

from __future__ import annotations

import keras
import numpy as np

from kerasreg import _checks
from kerasreg.models.graph import graph_of, nodes_in_order
from kerasreg.training.variance_shift import batch_norm_layers

NORMS = ("batch", "group")
MAX_GROUPS = 32  # Wu & He's default number of groups
MIN_GROUP_VALUES = 16  # values per group and example: fewer, and normalising a group erases what it holds


def group_count(channels, spatial=None):
    """GroupNormalization's groups for `channels` channels: the largest divisor of `channels` up to 32 that
    leaves at least 16 values in each group of one example (`channels / groups` x `spatial`, the number of
    positions per channel: 1 after a Dense layer; None, unknown, counts as enough).

    Example:

    >>> group_count(96, spatial=8 * 8), group_count(64, spatial=1), group_count(7)
    (32, 4, 7)
    """
    fitting = [g for g in range(1, min(channels, MAX_GROUPS) + 1)
               if channels % g == 0 and (spatial is None or channels // g * spatial >= MIN_GROUP_VALUES)]
    return max(fitting, default=1)


def _spatial(layer):
    """Positions per channel of `layer`'s input (1 for a Dense output), or None when its shape is not known."""
    try:
        shape = layer.input.shape
    except (AttributeError, ValueError):  # shared, or never called in a graph
        return None
    sizes = [d for i, d in enumerate(shape[1:], 1) if i != layer.axis % len(shape)]
    return None if any(d is None for d in sizes) else int(np.prod(sizes, dtype=np.int64))


def _group_norm(layer, groups):
    channels = int(layer.moving_mean.shape[0])
    groups = group_count(channels, _spatial(layer)) if groups is None else groups
    if channels % groups:
        raise _checks.invalid("groups", f"a divisor of every BatchNormalization's channels, as GroupNormalization "
                              f"needs ({layer.name} has {channels})", groups)
    config = layer.get_config()
    keys = ("axis", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer", "beta_regularizer",
            "gamma_regularizer", "beta_constraint", "gamma_constraint", "name", "trainable", "dtype")
    return keras.layers.GroupNormalization(groups=groups, **{k: config[k] for k in keys if k in config})


def _graph_batch_norms(model):
    """ids of the BatchNormalization layers that are nodes of `model`'s graph or of its nested graphs."""
    graph = graph_of(model)
    found = set()
    for node in nodes_in_order(graph) if graph is not None else ():
        layer = node.operation
        if isinstance(layer, keras.layers.BatchNormalization):
            found.add(id(layer))
        elif isinstance(layer, keras.Model):
            found |= _graph_batch_norms(layer)
    return found


def _copy_weights(old_model, new_model):
    """Every weight of `old_model` into `new_model`, layer by layer (names are unique within a model)."""
    new_layers = {layer.name: layer for layer in new_model.layers}
    for old in old_model.layers:
        if isinstance(old, keras.layers.InputLayer):
            continue  # no weights, and the clone's inputs are named anew
        new = new_layers[old.name]
        if isinstance(old, keras.Model) and graph_of(old) is not None:
            _copy_weights(old, new)
        elif isinstance(old, keras.layers.BatchNormalization) and isinstance(new, keras.layers.GroupNormalization):
            for name in ("gamma", "beta"):  # the moving statistics have no counterpart in GroupNorm
                if getattr(old, name) is not None and getattr(new, name) is not None:
                    # A copy: on JAX the two variables would otherwise share a buffer that a compiled call may free.
                    getattr(new, name).assign(keras.ops.convert_to_numpy(getattr(old, name)))
        else:
            new.set_weights(old.get_weights())


def _call(layer, *args, **kwargs):
    if isinstance(layer, keras.layers.GroupNormalization):
        kwargs = {}  # the BatchNormalization's `training` and `mask`, which GroupNormalization does not take
    return layer(*args, **kwargs)


def _rebuild(model, norm, momentum, groups):
    """`model` cloned with its BatchNormalization layers replaced, nested models rebuilt the same way."""
    def clone(layer):
        if isinstance(layer, keras.Model) and graph_of(layer) is not None:
            return _rebuild(layer, norm, momentum, groups)
        if not isinstance(layer, keras.layers.BatchNormalization):
            return layer.__class__.from_config(layer.get_config())
        if norm == "group":
            return _group_norm(layer, groups)
        return keras.layers.BatchNormalization.from_config({**layer.get_config(), "momentum": momentum})

    if isinstance(model, keras.Sequential):  # its layers are listed, not called: no call arguments to adapt
        return keras.models.clone_model(model, clone_function=clone)
    return keras.models.clone_model(model, clone_function=clone, call_function=_call)


def set_batch_norm(
    model: keras.Model, *, momentum: float | None = None, norm: str = "batch", groups: int | None = None,
) -> keras.Model:
    """A new model in which every BatchNormalization has a new momentum, or is replaced by GroupNormalization.

    Every other layer keeps its configuration and weights, and `model` is
    untouched; the result is not compiled. With `norm="batch"` each
    BatchNormalization keeps its weights and statistics and takes `momentum`.
    With `norm="group"` each becomes a GroupNormalization with the same
    name, axis, epsilon, centring and scaling: its gamma and beta are copied
    (the moving statistics have no counterpart), and its groups are
    `groups`, or by default the largest divisor of its channels up to 32
    that leaves at least 16 values per group and example (`group_count`:
    32 groups in a conv net's wide layers, fewer after a Dense layer).
    Sequential and functional models are handled, nested models (a
    `keras.applications` backbone) included.

    Training vs inference: a BatchNormalization normalises with batch
    statistics in training and with its moving statistics at inference; a
    GroupNormalization computes the same statistics of each example in both,
    so its outputs do not depend on the batch size.

    Args:
        model: keras.Model. A Sequential or functional model.
        momentum: float or None. The new momentum, in [0, 1), with
            `norm="batch"`. Defaults to `None`.
        norm: str. `"batch"` (keep BatchNormalization) or `"group"`. Defaults
            to `"batch"`.
        groups: int or None. GroupNormalization's groups, with
            `norm="group"`; must divide every layer's channels. Defaults to
            `None` (`group_count`).

    Returns:
        keras.Model: the new model.

    Example:

    >>> import kerasreg
    >>> from kerasreg.training import batch_norm_layers
    >>> model = kerasreg.build_model("mlp", placement="bn_before_act", input_shape=(40,), num_classes=10)
    >>> faster = kerasreg.set_batch_norm(model, momentum=0.9)
    >>> [layer.momentum for layer in batch_norm_layers(faster)]
    [0.9, 0.9]
    >>> batch_norm_layers(kerasreg.set_batch_norm(model, norm="group"))
    []
    """
    if not isinstance(model, keras.Model):
        raise _checks.invalid("model", "a keras.Model", received=f"model={type(model).__name__}")
    _checks.one_of(norm, NORMS, "norm")
    if norm == "group" and momentum is not None:
        raise _checks.invalid("momentum", "None with norm=\"group\" (GroupNormalization keeps no moving "
                              "statistics)", momentum)
    if norm == "batch":
        if momentum is None:
            raise _checks.invalid("momentum", "a float in [0, 1) with norm=\"batch\" (or norm=\"group\")", momentum)
        momentum = _checks.rate(momentum, "momentum")
        if groups is not None:
            raise _checks.invalid("groups", "None with norm=\"batch\"", groups)
    elif groups is not None:
        groups = _checks.positive_int(groups, "groups")
    if graph_of(model) is None:
        raise _checks.invalid("model", "a Sequential or functional model (a subclassed model has no layer graph "
                              "to rebuild)", received=f"model {model.name!r} of class {type(model).__name__}")
    layers = batch_norm_layers(model)
    if not layers:
        raise _checks.invalid("model", "a model with BatchNormalization layers", received=f"model {model.name!r} "
                              "without any")
    in_graphs = _graph_batch_norms(model)
    hidden = [layer.name for layer in layers if id(layer) not in in_graphs]
    if hidden:
        raise _checks.invalid("model", "BatchNormalization layers that are layers of a Sequential or functional "
                              "graph (nested models included)", received=f"{hidden[0]}, inside a custom layer")

    new = _rebuild(model, norm, momentum, groups)
    _copy_weights(model, new)
    return new
