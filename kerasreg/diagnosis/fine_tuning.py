"""Fine-tuning graphs: a nested backbone whose BatchNormalization layers run in the wrong mode during `fit`.

A backbone (a `keras.applications` model, or any Sequential or functional
model used as a layer) is a node of the user's graph, and the node records
the `training` argument it was called with. The Keras transfer-learning
guide's recipe is: freeze the backbone, call it as `base(inputs,
training=False)`, train the head, then unfreeze it and fine-tune with a low
learning rate, "so that batchnorm statistics don't get updated even after we
unfreeze the base model". Two graphs go wrong:

- a frozen backbone called without `training=False`: its BatchNormalization
  layers run in inference mode only because they are frozen, and switch to
  batch statistics the moment the backbone is unfrozen;
- an unfrozen backbone whose BatchNormalization layers run with batch
  statistics inside `fit` at a small batch (below `SMALL_BATCH`): each step
  normalises with the statistics of a handful of images and drags the
  pretrained moving statistics towards them (Wu & He, "Group Normalization",
  ECCV 2018: BatchNorm's error grows quickly as the batch shrinks).

Whether a recorded `training=False` holds inside `fit` depends on the Keras
version (keras-team/keras#20285): Keras 3's functional models pass the outer
call's `training=True` down to every nested model, replacing the recorded
argument. `training_false_holds()` measures it on a two-layer model, and the
advice follows what it finds: where the argument does not hold, only
`trainable=False` on the BatchNormalization layers keeps them in inference
mode (Keras runs a frozen BatchNormalization in inference mode whatever its
`training` argument).
"""

from __future__ import annotations

import functools

import keras
import numpy as np

from kerasreg._text import plural
from kerasreg.diagnosis.batch_norm_finding import BatchNormFinding
from kerasreg.models.graph import graph_of, nodes_in_order
from kerasreg.training.variance_shift import batch_norm_layers

SMALL_BATCH = 16  # batches below this many rows make BatchNorm's batch statistics noisy (Wu & He 2018)
KIND = "fine-tuning"


@functools.cache
def training_false_holds():
    """Whether this Keras keeps a nested model called with `training=False` in inference mode inside `fit`.

    Measured on a throwaway two-layer model (its layers named explicitly, so
    no automatic layer name of the user's changes): the outer model is called
    with `training=True`, as `fit` calls it, and the nested BatchNormalization
    either normalises with its moving statistics (the argument holds) or with
    the batch's.

    Example:

    >>> training_false_holds()  # Keras 3.15
    False
    """
    inner_input = keras.Input((2,), name="kerasreg_probe_inner_input")
    inner = keras.Model(inner_input, keras.layers.BatchNormalization(name="kerasreg_probe_bn")(inner_input),
                        name="kerasreg_probe_inner")
    outer_input = keras.Input((2,), name="kerasreg_probe_input")
    outer = keras.Model(outer_input, inner(outer_input, training=False), name="kerasreg_probe_outer")
    x = np.array([[4.0, 4.0], [6.0, 6.0]], "float32")  # batch statistics would centre these at 0
    out = keras.ops.convert_to_numpy(outer(x, training=True))
    return bool(np.all(out > 1.0))


def _overrides():
    return f"Keras {keras.__version__}'s fit replaces it with training=True (keras-team/keras#20285)"


def _freeze_advice(name):
    return (f"keep its BatchNormalization layers frozen (`for layer in model.get_layer({name!r}).layers: "
            "layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)`), as the Keras "
            "transfer-learning guide advises")


def _frozen_without_training_false(name, layers, holds):
    if holds:
        advice = ("call it with training=False (`x = base(inputs, training=False)`) so that BatchNorm stays in "
                  "inference mode when you unfreeze it (the Keras transfer-learning guide's advice)")
    else:
        advice = (f"when you unfreeze it, {_freeze_advice(name)}; calling it with training=False, the guide's other "
                  f"advice, is not enough here: {_overrides()}")
    return BatchNormFinding(
        name, KIND, f"backbone {name} is frozen and called without training=False: its "
        f"{plural(len(layers), 'BatchNormalization layer')} run in inference mode only while frozen, and switch "
        "to batch statistics as soon as it is unfrozen for fine-tuning", advice)


def _unfrozen_small_batch(name, trainable, training, batch_size):
    how = f"called with training=False, but {_overrides()}" if training is False else \
        "called without training=False"
    return BatchNormFinding(
        name, KIND, f"backbone {name} is fine-tuned with {plural(len(trainable), 'BatchNormalization layer')} "
        f"unfrozen and {how}, so at batch {batch_size} they normalise with the statistics of {batch_size} rows "
        "and pull their pretrained moving statistics towards them",
        f"{_freeze_advice(name)}; or train with a batch of at least {SMALL_BATCH}, or replace BatchNorm by "
        "GroupNorm (`kerasreg.set_batch_norm(model, norm=\"group\")`)")


def _overridden(name, trainable, batch_size):
    at = f" (batches of {batch_size} rows)" if batch_size else ""
    return BatchNormFinding(
        name, KIND, f"backbone {name} is called with training=False, but {_overrides()}: its "
        f"{plural(len(trainable), 'unfrozen BatchNormalization layer')} train with batch statistics{at} and "
        "update their moving statistics",
        f"that fine-tunes BatchNorm too; to keep the pretrained statistics, {_freeze_advice(name)}", problem=False)


def _backbone_calls(model):
    """`(node, nested model)` for every call of a nested model holding BatchNormalization, at any depth."""
    graph = graph_of(model)
    if graph is None:
        return []
    calls = []
    for node in nodes_in_order(graph):
        if isinstance(node.operation, keras.Model) and batch_norm_layers(node.operation):
            calls.append((node, node.operation))
            calls += _backbone_calls(node.operation)
    return calls


def fine_tuning_findings(model, *, batch_size=None):
    """What the graph says about each nested backbone's BatchNorm mode during `fit`, with the fix.

    Training vs inference: inside `fit` a BatchNormalization layer normalises
    with batch statistics and updates its moving statistics unless it is
    frozen (`trainable=False`), or the backbone holding it is called with a
    `training=False` that this Keras keeps (`training_false_holds`).

    Args:
        model: keras.Model. The model as it is trained (the backbone's
            `trainable` flags as they are during fine-tuning).
        batch_size: int or None. The batch `fit` trains with; None: unknown,
            so small batches are not judged. Defaults to `None`.

    Returns:
        list of `BatchNormFinding` of kind `"fine-tuning"`, one per backbone
        call that needs one.

    Example:

    >>> base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, include_top=False)
    >>> base.trainable = False
    >>> inputs = keras.Input((32, 32, 3))
    >>> model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(base(inputs)))
    >>> fine_tuning_findings(model)[0].text.startswith("backbone mobilenetv2_0.35_32 is frozen")
    True
    """
    holds = training_false_holds()
    findings = []
    for node, backbone in _backbone_calls(model):
        layers = batch_norm_layers(backbone)
        trainable = [layer for layer in layers if layer.trainable]
        training = node.arguments.kwargs.get("training")
        batch_stats = training is not False or not holds  # inside fit, for the layers that are not frozen
        if not trainable:
            if training is not False:
                findings.append(_frozen_without_training_false(backbone.name, layers, holds))
        elif batch_stats and batch_size is not None and batch_size < SMALL_BATCH:
            findings.append(_unfrozen_small_batch(backbone.name, trainable, training, batch_size))
        elif training is False and not holds:
            findings.append(_overridden(backbone.name, trainable, batch_size))
    return findings
