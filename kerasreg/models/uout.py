"""`Uout`: the variance-stable dropout of Li et al., "Understanding the Disharmony between Dropout and
Batch Normalization by Variance Shift", CVPR 2019.

Importing this module registers `Uout` with Keras (package "kerasreg"), so
`.keras` files that contain it load with safe mode on.
"""

from __future__ import annotations

from typing import Any

import keras

from kerasreg import _checks


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

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
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

