"""`move_dropout`: the fix the study supports, applied to a model kerasreg did not build.

Li, Chen, Hu & Yang, "Understanding the Disharmony between Dropout and Batch
Normalization by Variance Shift", CVPR 2019, give two remedies: apply
dropout only after the last BatchNormalization, or use their
variance-stable Uout. What kerasreg's quick study measured for dropout
feeding BatchNorm and for the first remedy (`head_dropout`) is in its
published summary (`kerasreg.analysis.published`), which `diagnose` quotes.
"""

from __future__ import annotations

import keras

from kerasreg import _checks
from kerasreg.diagnosis.structure import find_structure, is_dropout, is_weight_layer
from kerasreg.models.graph import consumers, graph_of, producer
from kerasreg.models.uout import Uout

TARGETS = ("head", "uout")
HEAD_DROPOUT_NAME = "head_dropout"


def _refuse(name, why):
    return ValueError(f"move_dropout cannot rewrite layer {name!r}: {why}. Move it by hand, or rebuild the model "
                      "with dropout only before its classifier head.")


def _head(model):
    """The weight layer that produces the model's output (the classifier head)."""
    graph = graph_of(model)
    tensor = graph.outputs[0]
    while True:
        node = producer(tensor)
        layer = node.operation
        if isinstance(layer, keras.Model):
            raise _refuse(layer.name, "the classifier head sits inside this nested model")
        if is_weight_layer(layer):
            return layer
        if len(node.input_tensors) != 1:  # a merge, or the model's input
            raise _refuse(layer.name, "no single chain leads from it back to a Dense or Conv classifier head")
        tensor = node.input_tensors[0]


def _checked_dropouts(model, names):
    graph = graph_of(model)
    layers = []
    for name in names:
        if "/" in name:
            raise _refuse(name, f"it sits inside the nested model {name.split('/')[0]!r}")
        layer = model.get_layer(name)
        if len(layer._inbound_nodes) != 1:
            raise _refuse(name, f"it is called {len(layer._inbound_nodes)} times (a shared layer)")
        if len(consumers(graph, *layer._inbound_nodes[0].output_tensors)) != 1:
            raise _refuse(name, "its output feeds several layers, so it does not sit on a single chain")
        layers.append(layer)
    return layers


def _head_dropout(moved):
    """The one dropout layer to put before the head: the moved layers' kind and largest rate."""
    kinds = {type(layer) for layer in moved}
    if len(kinds) == 1 and not isinstance(moved[0], keras.layers.Dropout):
        layer = max(moved, key=lambda item: getattr(item, "rate", getattr(item, "stddev", 0.0)))
        config = {k: v for k, v in layer.get_config().items() if k not in ("name", "trainable", "dtype")}
        return type(layer)(**config, name=HEAD_DROPOUT_NAME)
    # Spatial dropout drops whole feature maps; before a Dense head plain Dropout does the same job.
    rate = max(float(getattr(layer, "rate", 0.5)) for layer in moved)
    return keras.layers.Dropout(rate, seed=getattr(moved[0], "seed", None), name=HEAD_DROPOUT_NAME)


def _uout(layer):
    rate = float(getattr(layer, "rate", getattr(layer, "stddev", 0.1)))
    return Uout(min(rate, 0.99), seed=getattr(layer, "seed", None), name=f"{layer.name}_uout")


def _clone(layer):
    return layer.__class__.from_config(layer.get_config())


def move_dropout(model: keras.Model, to: str = "head") -> keras.Model:
    """A new model in which no dropout-kind layer feeds a BatchNormalization.

    The dropout-kind layers that `find_structure` finds on a dropout -> BN
    path are removed and one dropout layer (their kind, their largest rate;
    plain Dropout for spatial ones) is put right before the classifier head,
    after the last BatchNorm (`to="head"`, kerasreg's `head_dropout`), or each
    is replaced by `Uout` with the same rate (`to="uout"`). Every other layer
    keeps its configuration and weights (copied: `model` is not changed). A
    model with nothing to move comes back as an unchanged copy.

    Works for Sequential models and functional graphs where each such dropout
    sits on a single chain (called once, feeding one layer, not inside a
    nested model); any other graph is refused with a ValueError naming the
    layer.

    Training vs inference: after the move, every BatchNorm learns its moving
    statistics from the same activations it meets at inference; retrain (or
    fine-tune) the result, since the weights were learned with the old
    placement.

    Args:
        model: keras.Model. A Sequential or functional model.
        to: str. `"head"` or `"uout"`. Defaults to `"head"`.

    Returns:
        A new, uncompiled `keras.Model` of the same kind.

    Example:

    >>> import keras, kerasreg
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dropout(0.3),
    ...                           keras.layers.BatchNormalization(), keras.layers.Dense(3)])
    >>> fixed = kerasreg.move_dropout(model, to="head")
    >>> kerasreg.find_structure(fixed).paths
    ()
    """
    _checks.one_of(to, TARGETS, "to")
    structure = find_structure(model)
    moved = _checked_dropouts(model, structure.feeding_batch_norm)
    names = {layer.name for layer in moved}
    head = _head(model) if moved and to == "head" else None
    extra = _head_dropout(moved) if head is not None else None

    if isinstance(model, keras.Sequential):
        layers = []
        for layer in model.layers:
            if layer.name in names:
                if to == "uout":
                    layers.append(_uout(layer))
                continue
            if layer is head and extra is not None and not (layers and is_dropout(layers[-1])):
                layers.append(extra)
            layers.append(_clone(layer))
        new = keras.Sequential([keras.Input(model.inputs[0].shape[1:], dtype=model.inputs[0].dtype), *layers],
                               name=model.name)
    else:
        def clone(layer):
            if layer.name in names and to == "uout":
                return _uout(layer)
            return _clone(layer)

        def call(layer, *args, **kwargs):
            if layer.name in names:  # a removed dropout passes its input through
                return args[0]
            if head is not None and layer.name == head.name:
                inputs = args[0]
                made_by = producer(inputs)
                if made_by is None or not is_dropout(made_by.operation):
                    inputs = extra(inputs)
                return layer(inputs, *args[1:], **kwargs)
            return layer(*args, **kwargs)

        new = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for layer in new.layers:
        if layer.weights and layer.name not in names:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return new
