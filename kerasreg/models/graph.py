"""Reading the layer graph of a built Sequential or functional Keras model (nested models are nodes of it).

The one place that walks nodes, producers and consumers: the export, the
diagnosis and the training code read graphs through it.
"""

import keras


def graph_of(model):
    """The functional graph of a built Sequential or functional model, else None (a subclassed model).

    Example:

    >>> import keras
    >>> graph_of(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])) is not None
    True
    """
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    if hasattr(model, "_nodes_by_depth") and getattr(model, "outputs", None):
        return model
    return None


def nodes_in_order(graph):
    """The graph's call nodes in topological order (inputs first), without InputLayers.

    Each node has `operation` (the layer or nested model), `input_tensors`,
    `output_tensors` and `arguments` (`fill_in({id(tensor): value})` gives a
    call's `(args, kwargs)`).

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="d")])
    >>> [node.operation.name for node in nodes_in_order(graph_of(model))]
    ['d']
    """
    return [
        node
        for depth in sorted(graph._nodes_by_depth, reverse=True)
        for node in graph._nodes_by_depth[depth]
        if not isinstance(node.operation, keras.layers.InputLayer)
    ]


def producer(tensor):
    """The call node that made `tensor`, or None for a value that is not a Keras symbolic tensor.

    A model input's node is its InputLayer's, which has no inputs. A shared
    layer has a node for each call: this is the call that made this tensor.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="d")])
    >>> producer(model.outputs[0]).operation.name
    'd'
    """
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    return history.operation._inbound_nodes[history.node_index]


def consumers(graph, *tensors):
    """The graph's call nodes that take any of `tensors` as an input, each once, in topological order.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="d")])
    >>> [node.operation.name for node in consumers(graph_of(model), model.inputs[0])]
    ['d']
    """
    wanted = {id(tensor) for tensor in tensors}
    return [node for node in nodes_in_order(graph) if any(id(tensor) in wanted for tensor in node.input_tensors)]


def calls(graph, layer):
    """The graph's call nodes of `layer`: more than one when the graph calls a shared layer again.

    Calls of `layer` in other models are not counted.

    Example:

    >>> import keras
    >>> dense = keras.layers.Dense(2)
    >>> x = keras.Input((2,))
    >>> len(calls(keras.Model(x, dense(dense(x))), dense))
    2
    """
    return [node for node in nodes_in_order(graph) if node.operation is layer]
