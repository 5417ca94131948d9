"""Folding BatchNormalization into the preceding Dense or Conv layer (an inference-only transform).

Reference: Jacob et al., "Quantization and Training of Neural Networks for
Efficient Integer-Arithmetic-Only Inference", CVPR 2018 (section 3.2).
"""

from __future__ import annotations

import keras
import numpy as np

from kerasreg.export.layout import INPUT_NAME
from kerasreg.models.graph import calls, consumers, graph_of, nodes_in_order, producer


_WEIGHT_LAYERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def _is_foldable_weight(layer):
    return isinstance(layer, _WEIGHT_LAYERS) and keras.activations.serialize(layer.activation) == "linear"


def _channel_axis(layer, rank):
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return 1
    return rank - 1


def _can_fold(weight, norm, rank):
    return (
        _is_foldable_weight(weight)
        and isinstance(norm, keras.layers.BatchNormalization)
        and norm.axis % rank == _channel_axis(weight, rank)
    )


def _fold_pairs(model):
    """(weight layer, BatchNormalization) pairs where the BN is the weight output's only consumer.

    A model output counts as a consumer: folding would change what the model returns.
    """
    graph = graph_of(model)
    outputs = {id(tensor) for tensor in graph.outputs}
    pairs = []
    for node in nodes_in_order(graph):
        norm = node.operation
        if not isinstance(norm, keras.layers.BatchNormalization) or len(node.input_tensors) != 1:
            continue
        tensor = node.input_tensors[0]
        weight = producer(tensor).operation
        if (_can_fold(weight, norm, len(tensor.shape)) and id(tensor) not in outputs
                and len(consumers(graph, tensor)) == 1 and len(calls(graph, weight)) == 1
                and len(calls(graph, norm)) == 1):
            pairs.append((weight, norm))
    order = {id(layer): i for i, layer in enumerate(model.layers)}
    return sorted(pairs, key=lambda pair: order.get(id(pair[0]), -1))


def _float64(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable.value), np.float64)


def _folded_weights(weight, norm):
    """Kernel and bias of `weight` with `norm` (in inference mode) folded in, per output channel."""
    kernel = _float64(weight.kernel)
    channels = kernel.shape[-1]
    bias = _float64(weight.bias) if weight.use_bias else np.zeros(channels)
    gamma = _float64(norm.gamma) if norm.scale else np.ones(channels)
    beta = _float64(norm.beta) if norm.center else np.zeros(channels)
    mean = _float64(norm.moving_mean)
    variance = _float64(norm.moving_variance)
    scale = gamma / np.sqrt(variance + norm.epsilon)
    dtype = weight.kernel.dtype
    return [(kernel * scale).astype(dtype), ((bias - mean) * scale + beta).astype(dtype)]


def fold_batch_norm(model: keras.Model) -> keras.Model:
    """An inference model with each BatchNormalization that follows a Dense/Conv folded into it.

    Training vs inference: in inference mode BatchNormalization is a fixed
    per-channel affine map, `gamma * (x - moving_mean) / sqrt(moving_variance
    + epsilon) + beta`, so when it directly follows a linear Dense or Conv
    layer it can be merged into that layer: `W' = W * s`, `b' = (b - mean) * s
    + beta` with `s = gamma / sqrt(var + eps)` per output channel. The folded
    model has no batch statistics left, so it is for inference only. A BN
    that follows anything else (an activation, dropout, a residual sum), or
    whose input is also used elsewhere, is kept as it is.

    Args:
        model: keras.Model. A Sequential or functional model.

    Returns:
        A new `keras.Model` (the original is not changed) with the folded
        layer pairs listed in its `folded_pairs` attribute as
        `(weight_name, norm_name)` tuples.

    Example:

    >>> import kerasreg
    >>> model = kerasreg.build_model("mlp", placement="bn_before_act", input_shape=(40,), num_classes=10)
    >>> folded = fold_batch_norm(model)
    >>> folded.folded_pairs
    [('block1_weight', 'block1_norm'), ('block2_weight', 'block2_norm')]
    """
    if not isinstance(model, keras.Model) or not has_graph(model):
        raise ValueError(
            "fold_batch_norm needs a Sequential or functional keras.Model with defined inputs. "
            f"Received: model={model!r}"
        )
    pairs = _fold_pairs(model)
    folded_weight = {id(w): n for w, n in pairs}
    folded_norm = {id(n) for _, n in pairs}
    clones = {}

    def clone(layer):
        if id(layer) in folded_norm:
            return layer  # never called: call_function passes its input through
        config = layer.get_config()
        if id(layer) in folded_weight:
            config["use_bias"] = True
        clones[id(layer)] = layer.__class__.from_config(config)
        return clones[id(layer)]

    if isinstance(model, keras.Sequential):
        source = model.inputs[0]
        new_layers = [clone(layer) for layer in model.layers if id(layer) not in folded_norm]
        folded = keras.Sequential(
            [keras.Input(batch_shape=source.shape, dtype=source.dtype, name=INPUT_NAME), *new_layers],
            name=f"{model.name}_folded",
        )
    else:
        def call(layer, *args, **kwargs):
            return args[0] if id(layer) in folded_norm else layer(*args, **kwargs)

        folded = keras.models.clone_model(model, clone_function=clone, call_function=call)

    originals = {id(layer): layer for layer in model.layers}
    for key, new in clones.items():
        original = originals.get(key)
        if original is None:
            continue
        if key in folded_weight:
            new.set_weights(_folded_weights(original, folded_weight[key]))
        else:
            new.set_weights(original.get_weights())
    folded.folded_pairs = [(w.name, n.name) for w, n in pairs]
    folded.kerasreg_config = getattr(model, "kerasreg_config", None)
    return folded


def has_graph(model):
    try:
        return bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        return False
