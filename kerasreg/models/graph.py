"""Reading the layer graph of a built Sequential or functional Keras model (nested models are nodes of it)."""

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
