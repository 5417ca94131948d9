"""Monte Carlo dropout: predictive mean and spread with dropout kept on at inference.

Gal & Ghahramani, "Dropout as a Bayesian Approximation: Representing Model
Uncertainty in Deep Learning", ICML 2016: averaging several stochastic
forward passes with dropout active approximates the predictive
distribution, and their spread measures the model's uncertainty.

The usual shortcut, `model(x, training=True)`, is wrong for every model
with BatchNormalization: it also switches BN to the statistics of the
current batch (and, in Keras, updates its moving averages). `predict_mc`
switches only the dropout-kind layers to training mode.
"""

from __future__ import annotations

import collections
import pathlib
import warnings
from typing import TYPE_CHECKING

import keras
import numpy as np
from numpy.typing import ArrayLike

from kerasreg import _backend, _checks
from kerasreg.models.uout import Uout

if TYPE_CHECKING:
    from kerasreg.export.reader import Export


DROPOUT_LAYERS = (
    keras.layers.Dropout,  # also SpatialDropout1D/2D/3D
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.GaussianNoise,
    Uout,
)

MCPrediction = collections.namedtuple("MCPrediction", ["mean", "std"])


class _AlwaysTraining(keras.layers.Layer):
    """Calls the wrapped layer with `training=True` whatever the caller asks (never saved)."""

    def __init__(self, layer, **kwargs):
        super().__init__(name=layer.name, **kwargs)
        self.layer = layer

    def call(self, inputs, training=None):
        return self.layer(inputs, training=True)

    def compute_output_shape(self, input_shape):
        return input_shape


def _as_model(model_or_export):
    if isinstance(model_or_export, (str, pathlib.PurePath)):
        from kerasreg.export import load

        model_or_export = load(model_or_export)
    if hasattr(model_or_export, "keras_model") and not isinstance(model_or_export, keras.Model):
        model_or_export = model_or_export.keras_model()
    if not isinstance(model_or_export, keras.Model):
        raise TypeError(
            "predict_mc expects a keras.Model, a kerasreg Export (from kerasreg.load) or an "
            f"export path. Received: {type(model_or_export).__name__}"
        )
    return model_or_export


def mc_dropout_model(model, *, seed=None, dropout_layers=DROPOUT_LAYERS):
    """A model that runs `model` with only its dropout-kind layers in training mode.

    Every other layer (Dense, Conv, BatchNormalization, ...) is the very
    same layer object, so weights are shared and nothing is copied; the
    dropout layers are fresh copies from their configs wrapped to always
    run in training mode, so sampling never advances the original layers'
    random state.

    Training vs inference: call the result in inference mode (the default);
    BatchNormalization then uses its moving statistics while dropout drops.

    Args:
        model: keras.Model. Sequential or functional (nested models included).
        seed: int or None. Reseeds the dropout copies (`seed + i` for the
            i-th); `None` keeps each layer's own seed. Defaults to `None`.
        dropout_layers: tuple of layer classes treated as dropout.
            Defaults to `DROPOUT_LAYERS`.

    Returns:
        A `keras.Model` (for sampling only; not meant to be saved).

    Example:

    >>> import kerasreg
    >>> model = kerasreg.build_model("mlp", input_shape=(40,), num_classes=10, seed=0)
    >>> sampler = mc_dropout_model(model)
    """
    count = [0]

    def clone(layer):
        if not isinstance(layer, dropout_layers):
            return layer
        config = layer.get_config()
        if seed is not None and "seed" in config:
            config["seed"] = seed + count[0]
        count[0] += 1
        return _AlwaysTraining(layer.__class__.from_config(config))

    try:
        sampler = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except ValueError as exc:
        raise ValueError(
            f"predict_mc needs a Sequential or functional model; {type(model).__name__} "
            f"{model.name!r} cannot be rebuilt layer by layer ({exc})"
        ) from None
    sampler.dropout_layer_count = count[0]
    return sampler


@_backend.with_jax_settings
def predict_mc(
    model_or_export: keras.Model | Export,
    x: ArrayLike,
    samples: int = 30,
    *,
    batch_size: int = 1024,
    seed: int | None = None,
    dropout_layers: tuple[type, ...] = DROPOUT_LAYERS,
) -> MCPrediction:
    """Mean and standard deviation of predictions with dropout on and BatchNormalization in inference mode.

    Training vs inference: each of the `samples` passes runs the model in
    inference mode except for its dropout-kind layers (Dropout,
    SpatialDropout*, GaussianDropout, AlphaDropout, GaussianNoise, kerasreg's
    Uout), which drop as in training. BatchNormalization keeps its moving
    statistics and is not updated. (`model(x, training=True)` would instead
    normalise with the batch's own statistics and update the moving ones.)

    Args:
        model_or_export: a `keras.Model`, an `Export` from `kerasreg.load`
            (its `keras_model()` is used) or an export path.
        x: array-like of shape `(n, *input_shape)`, or a kerasreg `Dataset`
            (its test inputs are used).
        samples: int. Number of stochastic passes. Defaults to `30`.
        batch_size: int. Rows per forward pass. Defaults to `1024`.
        seed: int or None. Seed of the dropout noise; `None` uses the seeds
            the dropout layers were built with. Defaults to `None`.
        dropout_layers: tuple of layer classes treated as dropout; add your
            own noise layers here. Defaults to `DROPOUT_LAYERS`.

    Returns:
        `MCPrediction(mean, std)`, two np.ndarrays of the model's output shape
        (for a classifier: per-class probability mean and standard deviation).

    Example:

    >>> import numpy as np, kerasreg
    >>> model = kerasreg.build_model("mlp", input_shape=(40,), num_classes=10, seed=0)
    >>> mean, std = kerasreg.predict_mc(model, np.zeros((4, 40), "float32"), samples=10)
    >>> mean.shape, std.shape
    ((4, 10), (4, 10))
    """
    samples = _checks.positive_int(samples, "samples")
    if hasattr(x, "as_numpy"):
        x = x.as_numpy("test")[0]
    model = _as_model(model_or_export)
    sampler = mc_dropout_model(model, seed=seed, dropout_layers=dropout_layers)
    if sampler.dropout_layer_count == 0:
        warnings.warn(
            f"Model {model.name!r} has no dropout-kind layer ({', '.join(c.__name__ for c in dropout_layers)}); "
            "every Monte Carlo sample is the same and std is 0. Pass `dropout_layers=` "
            "to include your own noise layers.",
            stacklevel=2,
        )
    dtype = model.inputs[0].dtype if model.inputs else "float32"
    x = np.asarray(x, dtype=dtype)

    # Keras's own compiled predict step (jax.jit or tf.function) carries the
    # dropout layers' seed state from one call to the next on every backend.
    forward = sampler.predict_on_batch
    total = squares = None
    for _ in range(samples):
        out = np.concatenate([
            np.asarray(forward(x[i:i + batch_size]), np.float64)
            for i in range(0, len(x), batch_size)
        ])
        total = out if total is None else total + out
        squares = out ** 2 if squares is None else squares + out ** 2
    mean = total / samples
    std = np.sqrt(np.maximum(squares / samples - mean ** 2, 0.0))
    return MCPrediction(mean.astype(np.float32), std.astype(np.float32))
