"""The order runs start in: longest expected first, so no worker ends the study alone.

A pool hands runs out in the order they are submitted. Submitted in grid
order, a study's last minutes were one worker finishing a deep run while
the others idled; started longest first (the classic LPT rule of Graham,
"Bounds on multiprocessing timing anomalies", 1969), the short runs fill the
gaps at the end.

A run's expected cost is the arithmetic of one training example through its
architecture (multiply-accumulates of the weight layers of one built model
per architecture and options, the same for every placement) times the epochs
it may train; within an architecture, runs with dropout come first, since
they take more epochs to reach their validation plateau.
"""

import math

from kerasreg.models.placements import trains_with_dropout


def multiply_accumulates(model):
    """Multiply-accumulates of one example through the weight layers of a built Keras model.

    A Dense or Conv kernel is applied once per output position, so its size
    counts once per position of the layer's output.

    Example:

    >>> import kerasreg
    >>> model = kerasreg.build_model("mlp", widths=(8,), input_shape=(4,), num_classes=2)
    >>> multiply_accumulates(model)  # 4*8 + 8*2
    48
    """
    total = 0
    for layer in _leaf_layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is None or not hasattr(layer, "output"):
            continue
        positions = math.prod(layer.output.shape[1:-1])
        total += math.prod(kernel.shape) * positions
    return int(total)


def _leaf_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _leaf_layers(layer)
        else:
            yield layer


def longest_first(configs, build):
    """`configs` sorted by expected cost, most expensive first (stable for equal costs).

    Args:
        configs: list of `RunConfig`.
        build: callable. `build(config)` returns the built model of a config;
            it is called once per architecture and options, not per run.

    Example:

    >>> from kerasreg.runs import RunConfig, prepare
    >>> runs = [RunConfig(model="mlp", epochs=2), RunConfig(model="resnet_small", epochs=2)]
    >>> [c.model for c in longest_first(runs, lambda c: prepare(c)[1])]  # doctest: +SKIP
    ['resnet_small', 'mlp']
    """
    per_example = {}

    def cost(config):
        key = (config.model, config.dataset, repr(sorted(config.options.items())))
        if key not in per_example:
            per_example[key] = multiply_accumulates(build(config))
        with_dropout = trains_with_dropout({"placement": config.placement, "dropout_rate": config.dropout_rate})
        return (per_example[key] * config.epochs, with_dropout)

    return sorted(configs, key=cost, reverse=True)
