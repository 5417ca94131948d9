"""Dropout kinds and norm kinds as string -> layer factories, plus `Uout`.

Dropout kind and norm kind are axes of their own, independent of the
placement: `build_model(placement="bn_act_drop", dropout="gaussian",
norm="layer")` keeps the block order and swaps the layers.

References:
- Srivastava et al., JMLR 2014 (standard dropout); Tompson et al., CVPR 2015
  (spatial dropout); Klambauer et al., NeurIPS 2017 (alpha dropout).
- Li, Chen, Hu & Yang, "Understanding the Disharmony between Dropout and Batch
  Normalization by Variance Shift", CVPR 2019 (Uout).
- Ba et al., 2016 (layer normalisation); Wu & He, ECCV 2018 (group normalisation).
"""

import math

import keras

from kerasreg import _checks
from kerasreg._registry import Registry

BN_PRESETS = {
    "keras": {},
    # PyTorch's BatchNorm defaults: its momentum=0.1 weights the new batch,
    # which is Keras's momentum=0.9 on the running average.
    "torch": {"momentum": 0.9, "epsilon": 1e-5},
}

_DROPOUTS = Registry("dropout kind")
_NORMS = Registry("norm kind")


@keras.saving.register_keras_serializable(package="kerasreg")
class Uout(keras.layers.Layer):
    """Multiplicative uniform noise: `x * (1 + u)`, `u ~ U(-rate, rate)`.

    Training vs inference: in training each activation is scaled by an
    independent factor drawn from `U(1 - rate, 1 + rate)`; at inference the
    layer is the identity. The noise has mean 1, so unlike standard dropout
    it needs no rescaling, and its variance (`rate**2 / 3`) is small enough
    that a BatchNormalization after it sees nearly the same variance in
    both modes (Li et al., CVPR 2019).

    Args:
        rate: float in [0, 1). Half-width of the uniform noise.
        seed: int or None. Seed of the noise. Defaults to `None`.

    Example:

    >>> import numpy as np
    >>> layer = Uout(0.1, seed=0)
    >>> x = np.ones((2, 3), "float32")
    >>> bool(np.all(np.asarray(layer(x, training=False)) == x))
    True
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _checks.rate(rate)
        self.seed = seed
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        noise = keras.random.uniform(
            keras.ops.shape(inputs), minval=-self.rate, maxval=self.rate,
            seed=self.seed_generator, dtype=inputs.dtype,
        )
        return inputs * (1.0 + noise)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def register_dropout_kind(fn):
    """Register a dropout factory `fn(rate, *, seed, rank, name) -> Layer` under its name.

    `rank` is the rank of the input including the batch axis (2 for
    vectors, 3 for 1-D feature maps, 4 for images).

    Example:

    >>> import keras
    >>> @register_dropout_kind
    ... def doc_example_dropout(rate, *, seed, rank, name):
    ...     '''Standard dropout under another name.'''
    ...     return keras.layers.Dropout(rate, seed=seed, name=name)
    >>> "doc_example_dropout" in list_dropout_kinds()
    True
    """
    _DROPOUTS.add(fn.__name__, fn)
    return fn


def register_norm_kind(fn):
    """Register a norm factory `fn(channels, *, bn_preset, name) -> Layer` under its name.

    Example:

    >>> import keras
    >>> @register_norm_kind
    ... def doc_example_norm(channels, *, bn_preset, name):
    ...     '''Unit normalisation.'''
    ...     return keras.layers.UnitNormalization(name=name)
    >>> "doc_example_norm" in list_norm_kinds()
    True
    """
    _NORMS.add(fn.__name__, fn)
    return fn


@register_dropout_kind
def standard(rate, *, seed, rank, name):
    """Drops units with probability `rate` and scales the rest by 1/(1-rate)."""
    return keras.layers.Dropout(rate, seed=seed, name=name)


@register_dropout_kind
def spatial(rate, *, seed, rank, name):
    """Drops whole channels of conv feature maps (SpatialDropout1D/2D by input rank)."""
    layers = {3: keras.layers.SpatialDropout1D, 4: keras.layers.SpatialDropout2D}
    if rank not in layers:
        raise ValueError(
            "Dropout kind 'spatial' drops whole channels of 1-D or 2-D feature maps (inputs "
            f"of rank 3 or 4 including the batch axis), but layer {name!r} receives inputs of "
            f"rank {rank}. Use a conv architecture with an every-block placement, or "
            "dropout='standard'."
        )
    return layers[rank](rate, seed=seed, name=name)


@register_dropout_kind
def gaussian(rate, *, seed, rank, name):
    """Multiplies by Gaussian noise of mean 1 and variance rate/(1-rate)."""
    return keras.layers.GaussianDropout(rate, seed=seed, name=name)


@register_dropout_kind
def alpha(rate, *, seed, rank, name):
    """Alpha dropout, which keeps SELU's self-normalising mean and variance."""
    return keras.layers.AlphaDropout(rate, seed=seed, name=name)


@register_dropout_kind
def uout(rate, *, seed, rank, name):
    """Uniform multiplicative noise x*(1+U(-rate, rate)) (Li et al., CVPR 2019)."""
    return Uout(rate, seed=seed, name=name)


@register_norm_kind
def batch(channels, *, bn_preset, name):
    """BatchNormalization; `bn_preset` "keras" or "torch" picks momentum and epsilon."""
    return keras.layers.BatchNormalization(name=name, **get_bn_preset(bn_preset))


@register_norm_kind
def layer(channels, *, bn_preset, name):
    """LayerNormalization over the channel axis (batch-independent)."""
    return keras.layers.LayerNormalization(name=name)


@register_norm_kind
def group(channels, *, bn_preset, name):
    """GroupNormalization with gcd(channels, 8) groups, so any width works."""
    return keras.layers.GroupNormalization(groups=math.gcd(channels, 8), name=name)


@register_norm_kind
def none(channels, *, bn_preset, name):
    """No normalisation: the `norm` token of a placement adds no layer."""
    return None


def get_bn_preset(bn_preset):
    """Keyword arguments of BatchNormalization for a preset name.

    Example:

    >>> get_bn_preset("torch")
    {'momentum': 0.9, 'epsilon': 1e-05}
    """
    _checks.one_of(bn_preset, tuple(BN_PRESETS), "bn_preset")
    return dict(BN_PRESETS[bn_preset])


def get_dropout_kind(name):
    """The dropout factory registered as `name` (a callable passes through).

    Example:

    >>> get_dropout_kind("gaussian").__name__
    'gaussian'
    """
    return name if callable(name) else _DROPOUTS.get(name)


def get_norm_kind(name):
    """The norm factory registered as `name` (a callable passes through).

    Example:

    >>> get_norm_kind("batch").__name__
    'batch'
    """
    return name if callable(name) else _NORMS.get(name)


def list_dropout_kinds(filter="*"):
    """Sorted names of registered dropout kinds.

    Example:

    >>> list_dropout_kinds("s*")
    ['spatial', 'standard']
    """
    return _DROPOUTS.names(filter)


def list_norm_kinds(filter="*"):
    """Sorted names of registered norm kinds.

    Example:

    >>> list_norm_kinds()[:2]
    ['batch', 'group']
    """
    return _NORMS.names(filter)
