"""`find_structure`: where dropout feeds BatchNormalization in any Keras 3 model.

Li, Chen, Hu & Yang, "Understanding the Disharmony between Dropout and Batch
Normalization by Variance Shift", CVPR 2019: a dropout-kind layer whose
output reaches a BatchNormalization with no weight layer in between makes
the variance BN accumulates in training differ from what it sees at
inference. This module walks the layer graph of a Sequential or functional
model (nested models included) and names every such path, without running
the model.
"""

from __future__ import annotations

import collections
import dataclasses

import keras

from kerasreg import _checks
from kerasreg.analysis.mc_dropout import DROPOUT_LAYERS
from kerasreg.models.graph import graph_of, nodes_in_order
from kerasreg.models.placements import get_placement, list_placements
from kerasreg.models.uout import Uout

# Layers that mix features with learned weights: a dropout path ends at them.
_WEIGHT_ATTRIBUTES = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings", "cell")


@dataclasses.dataclass(frozen=True)
class DropoutPath:
    """A chain of layers from a dropout-kind layer to the BatchNormalization it feeds.

    Attributes:
        layers: tuple of str. Layer names from the dropout to the BN; a layer
            inside a nested model is named `outer/inner`.
        placement: str or None. The kerasreg placement the dropout's block
            matches, if any.
        kind: str. Class name of the dropout-kind layer (`"Dropout"`, `"Uout"`, ...).
    """

    layers: tuple
    placement: str | None = None
    kind: str = "Dropout"

    @property
    def dropout(self):
        """Name of the dropout-kind layer the path starts at."""
        return self.layers[0]

    @property
    def batch_norm(self):
        """Name of the BatchNormalization the path ends at."""
        return self.layers[-1]

    def text(self):
        """The path as `drop -> act -> bn`."""
        return " -> ".join(self.layers)


@dataclasses.dataclass(frozen=True)
class Structure:
    """What `find_structure` found in a model's graph.

    Attributes:
        paths: tuple of `DropoutPath`, in graph order.
        batch_norm_layers: tuple of str. Every BatchNormalization, in graph order.
        dropout_layers: tuple of str. Every dropout-kind layer, in graph order.
        blocks: dict. Placement name -> number of blocks (a weight layer and
            the layers up to the next one, on a single chain) matching it.
        placement: str or None. The placement most blocks match; `head_dropout`
            when every block is `bn_before_act` and dropout sits only before
            the head.
    """

    paths: tuple
    batch_norm_layers: tuple
    dropout_layers: tuple
    blocks: dict
    placement: str | None

    @property
    def feeding_batch_norm(self):
        """Names of the dropout-kind layers on at least one path, in graph order."""
        return tuple(dict.fromkeys(path.dropout for path in self.paths))


def is_dropout(layer):
    """True for a dropout-kind layer (Dropout, SpatialDropout*, GaussianDropout, AlphaDropout, GaussianNoise, Uout).

    Example:

    >>> import keras
    >>> is_dropout(keras.layers.SpatialDropout2D(0.1)), is_dropout(keras.layers.Dense(2))
    (True, False)
    """
    return isinstance(layer, DROPOUT_LAYERS)


def is_weight_layer(layer):
    """True for a layer that mixes features with learned weights (Dense, Conv*, Embedding, RNN, attention).

    Example:

    >>> import keras
    >>> dense = keras.layers.Dense(2)
    >>> dense.build((None, 3))  # a layer's weights exist once it is built, as in any built model
    >>> is_weight_layer(dense), is_weight_layer(keras.layers.ReLU())
    (True, False)
    """
    if isinstance(layer, (keras.layers.MultiHeadAttention, keras.layers.RNN)):
        return True
    if isinstance(layer, keras.Model):
        return False
    if any(hasattr(layer, attribute) for attribute in _WEIGHT_ATTRIBUTES):
        return True
    # A custom layer holding weight layers is opaque: treat it as one.
    return any(is_weight_layer(sub) for sub in layer._flatten_layers(include_self=False, recursive=True))


@dataclasses.dataclass
class _Call:
    name: str
    layer: object
    token: str | None
    producers: list


class _Walk:
    """One pass over a model's graph, nested models expanded into one call list."""

    def __init__(self):
        self.calls = []
        self.paths = []

    def model(self, model, in_states, in_calls, prefix):
        graph = graph_of(model)
        if graph is None:
            raise ValueError(
                f"Cannot read the layer graph of {type(model).__name__} {model.name!r}: diagnose needs a "
                "Sequential or functional model (build it, e.g. with `keras.Input`, before diagnosing).")
        states = {id(t): s for t, s in zip(graph.inputs, in_states)}
        producers = {id(t): c for t, c in zip(graph.inputs, in_calls)}
        for node in nodes_in_order(graph):
            layer = node.operation
            ins = [states.get(id(t), frozenset()) for t in node.input_tensors]
            sources = [producers.get(id(t)) for t in node.input_tensors]
            name = f"{prefix}{layer.name}"
            if isinstance(layer, keras.Model) and graph_of(layer) is not None:
                outs, out_calls = self.model(layer, ins, sources, f"{name}/")
            else:
                outs, out_calls = self.layer(layer, name, ins, sources)
            for i, t in enumerate(node.output_tensors):
                states[id(t)] = outs[min(i, len(outs) - 1)]
                producers[id(t)] = out_calls[min(i, len(out_calls) - 1)]
        return ([states.get(id(t), frozenset()) for t in graph.outputs],
                [producers.get(id(t)) for t in graph.outputs])

    def layer(self, layer, name, ins, sources):
        """Output path sets of one layer call: a path is the tuple of names since its dropout."""
        call = _Call(name, layer, _token(layer), [s for s in sources if s is not None])
        self.calls.append(call)
        reaching = frozenset().union(*ins) if ins else frozenset()
        if isinstance(layer, keras.layers.BatchNormalization):
            self.paths.extend((*path, name) for path in sorted(reaching))
            out = frozenset()  # what BN feeds is normalised: the next BN sees no shift from this dropout
        elif is_dropout(layer):
            out = frozenset({*(p + (name,) for p in reaching), (name,)})
        elif is_weight_layer(layer):
            out = frozenset()
        else:
            out = frozenset(p + (name,) for p in reaching)
        return [out], [call]


def _token(layer):
    if isinstance(layer, keras.layers.BatchNormalization):
        return "norm"
    if is_dropout(layer):
        return "drop"
    if is_weight_layer(layer):
        return "weight"
    if isinstance(layer, (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.PReLU,
                          keras.layers.ELU, keras.layers.Softmax)):
        return "act"
    return None


def _blocks(calls):
    """For every weight call: the tokens of the calls after it on a single chain, up to the next weight."""
    consumers = collections.defaultdict(list)
    for call in calls:
        for producer in call.producers:
            consumers[id(producer)].append(call)
    blocks = []
    for call in calls:
        if call.token != "weight":
            continue
        tokens, members, current = ["weight"], [call], call
        while len(consumers[id(current)]) == 1:
            current = consumers[id(current)][0]
            if current.token == "weight" or len(current.producers) != 1:
                break
            if current.token is not None and current.token not in tokens:
                tokens.append(current.token)
            members.append(current)
        blocks.append((tuple(tokens), members))
    return blocks


def _match(tokens, members):
    """The name of the every-block placement whose block is `tokens` (Uout picks `uout`), else None."""
    dropouts = [m.layer for m in members if m.token == "drop"]
    for name in list_placements():
        placement = get_placement(name)
        if placement.dropout_scope != "every_block" or placement.block != tokens:
            continue
        uses_uout = bool(dropouts) and all(isinstance(d, Uout) for d in dropouts)
        if (placement.dropout_kind == "uout") == uses_uout:
            return name
    return None


def _path_placement(block):
    """The placement of a dropout's block when, inside it, dropout comes before the norm it feeds; else None.

    (In `bn_act_drop` dropout follows the norm: a path from it reaches another
    block's BN, which that placement does not describe.)
    """
    name = _match(*block) if block else None
    tokens = get_placement(name).block if name else ()
    return name if "drop" in tokens and "norm" in tokens and tokens.index("drop") < tokens.index("norm") else None


def _model_placement(blocks, calls):
    hidden = [_match(tokens, members) for tokens, members in blocks[:-1]]  # the last weight layer is the head
    if not hidden:
        return None
    order = [call.token for call in calls]
    if "drop" in order and "norm" in order and order.index("drop") > len(order) - 1 - order[::-1].index("norm") \
            and all(name is not None and get_placement(name).uses_norm for name in hidden):
        return "head_dropout"  # BatchNorm in every block, dropout only after the last one
    counts = collections.Counter(name for name in hidden if name is not None)
    name = counts.most_common(1)[0][0] if counts else None
    if name and next((token for token in order if token is not None), None) == "drop":
        # Dropout before the first weight layer: a placement whose block starts with dropout (Wide ResNet's
        # order, `drop_before_weight`) shows, from one weight layer to the next, the block it rotates into.
        return _starting_with_dropout(get_placement(name)) or name
    return name


def _starting_with_dropout(rotated):
    """The every-block placement whose block starts with dropout and, started at its weight layer, is `rotated`'s."""
    for name in list_placements():
        placement = get_placement(name)
        block = placement.block
        if (placement.dropout_scope == "every_block" and block[:1] == ("drop",) and "weight" in block
                and placement.dropout_kind == rotated.dropout_kind
                and block[block.index("weight"):] + block[:block.index("weight")] == rotated.block):
            return name
    return None


def find_structure(model: keras.Model) -> Structure:
    """Every path on which a dropout-kind layer reaches a BatchNormalization with no weight layer between.

    Paths run through anything that is not a weight layer (activations,
    pooling, reshapes, padding, Add/Concatenate, ...) and into and out of
    nested models; they end at the first BatchNormalization or at a weight
    layer (Dense, Conv*, Embedding, RNN, attention, or a custom layer holding
    one). Nothing is run: only the graph is read.

    Training vs inference: Dropout scales kept units by `1 / (1 - rate)` in
    training only, so a BN it feeds learns a moving variance larger than the
    variance it meets at inference (the variance shift). A weight layer in
    between mixes the noise and shrinks the shift, which is why such paths
    are not reported.

    Args:
        model: keras.Model. A built Sequential or functional model; nested
            Sequential/functional models are walked too.

    Returns:
        A `Structure`.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="hidden"),
    ...                           keras.layers.Dropout(0.5, name="drop"), keras.layers.ReLU(name="relu"),
    ...                           keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(3, name="head")])
    >>> [path.text() for path in find_structure(model).paths]
    ['drop -> relu -> bn']
    """
    if not isinstance(model, keras.Model):
        raise _checks.invalid("model", "a keras.Model (Sequential or functional)",
                              received=f"model={model!r} of type {type(model).__name__}")
    graph = graph_of(model)
    if graph is None:
        raise ValueError(
            f"Cannot read the layer graph of {type(model).__name__} {model.name!r}: diagnose needs a "
            "Sequential or functional model (build it, e.g. with `keras.Input`, before diagnosing).")
    walk = _Walk()
    walk.model(model, [frozenset()] * len(graph.inputs), [None] * len(graph.inputs), "")
    blocks = _blocks(walk.calls)
    block_of = {id(m): (tokens, members) for tokens, members in blocks for m in members}
    by_name = {call.name: call for call in walk.calls}
    paths = []
    for names in dict.fromkeys(walk.paths):
        block = block_of.get(id(by_name[names[0]]))
        paths.append(DropoutPath(tuple(names), _path_placement(block), type(by_name[names[0]].layer).__name__))
    matched = collections.Counter(_match(tokens, members) for tokens, members in blocks[:-1])
    return Structure(
        paths=tuple(paths),
        batch_norm_layers=tuple(c.name for c in walk.calls if c.token == "norm"),
        dropout_layers=tuple(c.name for c in walk.calls if c.token == "drop"),
        blocks=dict(sorted((name, n) for name, n in matched.items() if name is not None)),
        placement=_model_placement(blocks, walk.calls),
    )
