"""Architectures of the zoo: each is a stack of blocks shaped by a placement.

An architecture function receives a block builder and returns the body of
the network as a list of Keras layers (and `Residual` branches), ending in
flat features; `build_model` adds the classifier head and turns the list
into a Sequential or functional model. The builder applies the placement,
so every architecture works with every placement, built-in or registered
later.

References: He et al., "Deep Residual Learning for Image Recognition", CVPR
2016 (`resnet_small`, and `resnet_cifar`: their CIFAR-10 ResNets of §4.2); Greydanus, "Scaling down Deep Learning", 2020
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
    """A residual branch: `shortcut(x) + branch(x)`; only functional models can hold one.

    An empty `shortcut` is the identity skip; where the branch changes the
    shape, the shortcut is a projection (a strided 1x1 convolution).
    """

    name: str
    branch: list
    shortcut: list = dataclasses.field(default_factory=list)


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


def _residual_input(name, blocks, input_shape):
    """Rank 1 or 2 (signals) means 1-D convolutions, rank 3 (images) 2-D; the layers adding the channel axis."""
    if len(input_shape) not in (1, 2, 3):
        raise _checks.invalid("input_shape", "(length,), (length, channels) or (height, width, channels)",
                              of=f" of model {name!r}", received=f"input_shape={tuple(input_shape)}")
    dims = 2 if len(input_shape) == 3 else 1
    return dims, blocks.reshape(input_shape, _feature_map_shape(name, input_shape, dims))


def _residual_unit(blocks, name, filters, *, strides, dims, projection):
    """Two placement blocks of 3x3 convolutions (the first with `strides`) beside their skip."""
    import keras

    branch = blocks.conv(f"{name}a", filters, kernel_size=3, strides=strides, dims=dims)
    branch += blocks.conv(f"{name}b", filters, kernel_size=3, strides=1, dims=dims)
    if not projection:
        return Residual(name, branch)
    conv = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D}[dims]
    # A projection is a linear map (He et al. eq. 2), outside every placement block: no norm, act or dropout.
    shortcut = conv(filters, 1, strides=strides, padding="same", name=f"{name}_shortcut",
                    kernel_initializer=keras.initializers.GlorotUniform(seed=blocks.next_seed()))
    return Residual(name, branch, [shortcut])


def _global_pool(dims):
    import keras

    return {1: keras.layers.GlobalAveragePooling1D, 2: keras.layers.GlobalAveragePooling2D}[dims](name="pool")


@register_model
def resnet_small(blocks, *, input_shape, filters=32, stages=2):
    """Small residual network: a stem and `stages` residual units, all of `filters` channels at stride 1.

    The placement applies inside each residual branch. Inputs of rank 1 or
    2 (signals) use 1-D convolutions, rank 3 (images) 2-D convolutions.
    Every unit keeps the input's resolution, which suits MNIST-1D's length
    40; for larger images `resnet_cifar` halves the resolution between
    stages. Functional only: residual additions have no Sequential form.
    """
    dims, layers = _residual_input("resnet_small", blocks, input_shape)
    layers += blocks.conv("stem", filters, kernel_size=3, strides=1, dims=dims)
    for i in range(1, stages + 1):
        layers.append(_residual_unit(blocks, f"res{i}", filters, strides=1, dims=dims, projection=False))
    return layers + [_global_pool(dims)]


@register_model
def resnet_cifar(blocks, *, input_shape, filters=(16, 32, 64), blocks_per_stage=3):
    """The CIFAR-10 ResNets of He et al. (2016, §4.2): stages of widening filters, stride 2 between them.

    A 3x3 stem of `filters[0]` channels, then one stage per entry of
    `filters`, each of `blocks_per_stage` residual units (two 3x3 placement
    blocks each); the first unit of every stage after the first halves the
    resolution (stride 2), and its shortcut is a projection (a 1x1
    convolution with stride 2, He et al.'s eq. 2). Global average pooling
    and the softmax head follow. With the defaults this is ResNet-20
    (6n + 2 layers for n = `blocks_per_stage`: 3, 5, 7, 9 give ResNet-20,
    32, 44, 56), for which the paper reports 0.27 M parameters (Table 6;
    ResNet-32: 0.46 M, -44: 0.66 M, -56: 0.85 M); built for 32x32x3
    inputs and 10 classes it has within 3% of that (biases, BatchNorm's
    moving statistics and the two projections are the difference).

    The placement decides each block's order, so the paper's ReLU after
    the addition is not applied (as in `resnet_small`, each branch ends in
    its placement's activation). Inputs of rank 1 or 2 (signals) use 1-D
    convolutions, rank 3 (images) 2-D. On 28x28 images the stages run at
    28, 14 and 7 pixels a side; on 8x8 digits at 8, 4 and 2. Functional
    only: residual additions have no Sequential form.

    Example:

    >>> import kerasreg
    >>> model = kerasreg.build_model("resnet_cifar", input_shape=(28, 28, 1), num_classes=10)
    >>> model.get_layer("res3_1_add").output.shape
    (None, 7, 7, 64)
    """
    blocks_per_stage = _checks.positive_int(blocks_per_stage, "blocks_per_stage")
    filters = (filters,) if _checks.is_int(filters) else tuple(filters)  # one int: a single stage
    dims, layers = _residual_input("resnet_cifar", blocks, input_shape)
    layers += blocks.conv("stem", filters[0], kernel_size=3, strides=1, dims=dims)
    width = filters[0]
    for stage, stage_filters in enumerate(filters, start=1):
        for unit in range(1, blocks_per_stage + 1):
            strides = 2 if stage > 1 and unit == 1 else 1
            layers.append(_residual_unit(blocks, f"res{stage}_{unit}", stage_filters, strides=strides, dims=dims,
                                         projection=strides != 1 or stage_filters != width))
            width = stage_filters
    return layers + [_global_pool(dims)]


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
