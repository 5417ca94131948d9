"""Architectures of the zoo: each is a stack of blocks shaped by a placement.

An architecture function receives a block builder and returns the body of
the network as a list of Keras layers (and `Residual` branches), ending in
flat features; `build_model` adds the classifier head and turns the list
into a Sequential or functional model. The builder applies the placement,
so every architecture works with every placement, built-in or registered
later.

References: He et al., "Deep Residual Learning for Image Recognition", CVPR
2016 (`resnet_small`); Greydanus, "Scaling down Deep Learning", 2020
(MNIST-1D, the data `cnn1d` is sized for).

Architectures import Keras when they build: listing them must stay light.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, TypeVar

from kerasreg import _checks
from kerasreg._registry import Registry

F = TypeVar("F", bound=Callable)


_MODELS = Registry("model")


@dataclasses.dataclass
class Residual:
    """A residual branch: `x + branch(x)`; only functional models can hold one."""

    name: str
    branch: list


def register_model(fn: F) -> F:
    """Register an architecture function under its own name.

    The function takes the block builder as its only positional argument
    and keyword-only `input_shape` plus its own options; it returns a list
    of layers (and `Residual` branches) ending in flat features.

    Example:

    >>> import kerasreg
    >>> @kerasreg.register_model
    ... def doc_example_wide_mlp(blocks, *, input_shape, width=256):
    ...     '''One wide hidden block.'''
    ...     return blocks.flatten(input_shape) + blocks.dense("block1", width)
    >>> "doc_example_wide_mlp" in kerasreg.list_models()
    True
    """
    _MODELS.add(fn.__name__, fn)
    return fn


def get_model_fn(name):
    """The architecture function registered as `name`.

    Example:

    >>> get_model_fn("mlp").__name__
    'mlp'
    """
    return _MODELS.get(name)


def list_models(filter: str = "*") -> list[str]:
    """Sorted names of registered architectures matching an fnmatch pattern.

    Example:

    >>> list_models("cnn*")
    ['cnn1d', 'cnn2d']
    """
    return _MODELS.names(filter)


def model_options(name: str) -> dict[str, Any]:
    """The keyword options an architecture accepts beyond `input_shape`, with defaults.

    Example:

    >>> model_options("mlp")
    {'widths': (100, 100)}
    """
    params = inspect.signature(get_model_fn(name)).parameters
    return {
        p.name: p.default
        for p in list(params.values())[1:]
        if p.name != "input_shape"
    }


def _feature_map_shape(name, input_shape, spatial_dims):
    """Add a channel axis when missing; reject shapes of the wrong rank."""
    if len(input_shape) == spatial_dims:
        return (*input_shape, 1)
    if len(input_shape) == spatial_dims + 1:
        return tuple(input_shape)
    expected = {1: "(length,) or (length, channels)", 2: "(height, width) or (height, width, channels)"}
    raise _checks.invalid("input_shape", expected[spatial_dims], of=f" of model {name!r}",
                          received=f"input_shape={tuple(input_shape)}")


@register_model
def mlp(blocks, *, input_shape, widths=(100, 100)):
    """Multilayer perceptron: one dense block per width (default 100-100).

    Takes inputs of any shape: feature vectors as they are, images flattened.

    Default recipe on MNIST-1D (`benchmarks/zoo_fidelity.py`): placement
    `bn_act_drop`, rate 0.2, Adam 1e-3, batch 100, early stopping on
    validation loss (patience 15, best epoch kept). The MNIST-1D paper
    reports 68% for its MLP.
    """
    layers = blocks.flatten(input_shape)
    for i, width in enumerate(widths, start=1):
        layers += blocks.dense(f"block{i}", width)
    return layers


def _strided_cnn(blocks, name, input_shape, filters, kernel_size, dims):
    """Conv blocks with stride 2 (each halves the length or side), then flatten."""
    import keras

    shape = _feature_map_shape(name, input_shape, dims)
    layers = blocks.reshape(input_shape, shape)
    for i, n in enumerate(filters, start=1):
        layers += blocks.conv(f"block{i}", n, kernel_size=kernel_size, strides=2, dims=dims)
    return layers + [keras.layers.Flatten(name="flatten")]


@register_model
def cnn1d(blocks, *, input_shape, filters=(32, 64), kernel_size=5):
    """1-D CNN for signals such as MNIST-1D: strided conv blocks, then flatten.

    Default recipe on MNIST-1D (`benchmarks/zoo_fidelity.py`): placement
    `bn_act_drop`, rate 0.2, Adam 1e-3, batch 100, early stopping on
    validation loss (patience 15, best epoch kept; it stops after 100-140
    epochs: a fixed 60 epochs stops too early, at about 92%). The MNIST-1D
    paper reports 94% for its CNN.
    """
    return _strided_cnn(blocks, "cnn1d", input_shape, filters, kernel_size, dims=1)


@register_model
def cnn2d(blocks, *, input_shape, filters=(16, 32), kernel_size=3):
    """2-D CNN for images of any size and channels (8x8x1 digits, 28x28x1, 32x32x3): strided conv blocks."""
    return _strided_cnn(blocks, "cnn2d", input_shape, filters, kernel_size, dims=2)


@register_model
def resnet_small(blocks, *, input_shape, filters=32, stages=2):
    """Small residual network; the placement applies inside each residual branch.

    Inputs of rank 1 or 2 (signals) use 1-D convolutions, rank 3 (images)
    2-D convolutions. Functional only: residual additions have no
    Sequential form.
    """
    import keras

    if len(input_shape) not in (1, 2, 3):
        raise _checks.invalid("input_shape", "(length,), (length, channels) or (height, width, channels)",
                              of=" of model 'resnet_small'", received=f"input_shape={tuple(input_shape)}")
    dims = 2 if len(input_shape) == 3 else 1
    shape = _feature_map_shape("resnet_small", input_shape, dims)
    layers = blocks.reshape(input_shape, shape)
    layers += blocks.conv("stem", filters, kernel_size=3, strides=1, dims=dims)
    for i in range(1, stages + 1):
        branch = blocks.conv(f"res{i}a", filters, kernel_size=3, strides=1, dims=dims)
        branch += blocks.conv(f"res{i}b", filters, kernel_size=3, strides=1, dims=dims)
        layers.append(Residual(f"res{i}", branch))
    pool = {1: keras.layers.GlobalAveragePooling1D, 2: keras.layers.GlobalAveragePooling2D}[dims]
    return layers + [pool(name="pool")]


@register_model
def tutorial_net(blocks, *, input_shape, widths=(5,)):
    """The PyTorch tutorial's net: Linear(10, 5) followed by Dropout(p=0.2) or BatchNorm.

    The tutorial's BatchNorm version puts `nn.BatchNorm1d(10)` after
    `nn.Linear(10, 5)`, which cannot run: the layer expects 10 features and
    receives 5. kerasreg normalises the 5 features the Linear layer
    produces. A softmax head is added so the net trains as a classifier.
    """
    layers = blocks.flatten(input_shape)
    for i, width in enumerate(widths, start=1):
        layers += blocks.dense(f"block{i}", width)
    return layers
