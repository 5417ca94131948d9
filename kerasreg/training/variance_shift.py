"""`VarianceShiftMonitor`: how far each BatchNormalization's inference statistics are from its moving ones.

The variance shift of Li, Chen, Hu & Yang, "Understanding the Disharmony
between Dropout and Batch Normalization by Variance Shift", CVPR 2019: the
variance a BN layer sees at inference divided by the moving variance it
learned during training. Dropout feeding BN makes the two disagree.
"""

from __future__ import annotations

import contextlib
import os
import warnings

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from kerasreg import _checks
from kerasreg.training.evaluator import compile_inference, to_tensor
from kerasreg.training.jsonl import append_jsonl, jsonl_file, prepare_jsonl

# Validation rows the variance shift is measured on (during training and after re-estimation).
VARIANCE_SHIFT_BATCH = 256


def batch_norm_layers(model):
    """BatchNormalization layers at any depth, in model order.

    Example:

    >>> len(batch_norm_layers(kerasreg.build_model("mlp", input_shape=(40,), num_classes=10)))  # doctest: +SKIP
    2
    """
    # `Model.layers` stops at the first level; nested models and custom
    # blocks (e.g. residual blocks) hold BN layers further down.
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def largest_shift(ratios):
    """The largest per-layer deviation `max(r, 1/r)` of variance-shift `ratios` (a dict), or None when empty.

    Example:

    >>> largest_shift({"bn": 0.5, "bn_1": 1.2})
    2.0
    """
    return float(max(max(r, 1.0 / r) for r in ratios.values())) if ratios else None


@contextlib.contextmanager
def inputs_recorded(layers, record):
    """Within the block, each call of one of `layers` first passes `(layer, inputs)` to `record`.

    Example:

    >>> seen = []
    >>> with inputs_recorded(batch_norm_layers(model), lambda layer, x: seen.append(layer)):  # doctest: +SKIP
    ...     model(x, training=False)
    """
    def wrap(layer):
        original = layer.call

        def call(inputs, *args, **kwargs):
            record(layer, inputs)
            return original(inputs, *args, **kwargs)

        return call

    for layer in layers:
        layer.call = wrap(layer)
    try:
        yield
    finally:
        for layer in layers:
            del layer.call


def _unique_names(layers):
    names = [layer.name for layer in layers]
    if len(set(names)) == len(names):
        return names
    paths = [getattr(layer, "path", None) or layer.name for layer in layers]
    if len(set(paths)) == len(paths):
        return paths
    return [f"{name}_{i}" for i, name in enumerate(names)]


class VarianceShiftMonitor(keras.callbacks.Callback):
    """Logs the variance shift of every BatchNormalization layer.

    For each BatchNormalization layer (found at any depth, including nested
    models and custom layers) the model is run in inference mode on a fixed
    validation batch, the variance of the layer's input is taken per channel
    (over all axes except the layer's `axis`, the last by default), and the
    ratio

        (inference variance + epsilon) / (moving_variance + epsilon)

    is averaged over channels. 1 means the statistics BN learned during
    training match what it meets at inference; the BN's own `epsilon` keeps
    constant channels (e.g. dead ReLU units) at 1 instead of 0 or infinity.
    Logged keys, added to the epoch `logs`:

    - `variance_shift/<layer name>`: the ratio of each layer (the layer's
      path is used instead if names clash);
    - `variance_shift_mean`: mean of the per-layer ratios;
    - `variance_shift_max`: the largest per-layer deviation `max(r, 1/r)`,
      so 1.6 means some layer is off by a factor 1.6 in either direction.

    Training vs inference: Dropout before a BatchNormalization layer scales
    kept units by `1 / (1 - rate)` in training, which inflates the variance
    BN accumulates in `moving_variance`; at inference Dropout is the
    identity and the variance is smaller, so the ratio falls below 1 (Li et
    al., CVPR 2019). With BN before Dropout, or without Dropout, it stays
    close to 1.

    The probe is compiled once (`jax.jit` on JAX, `tf.function` on
    TensorFlow): it records each BN layer's input during an inference-mode
    call of the model and computes the ratios inside the compiled function.

    Args:
        validation_batch: the inputs `x` of a fixed batch (array, or dict of
            arrays), a tuple `(x, y)`, or a batched `tf.data.Dataset` whose
            first batch is used. A few hundred rows are enough.
        log_path: str or path-like. A directory, in which
            `variance_shift.jsonl` is written, or a path ending in
            `.jsonl`; one JSON object per epoch with `"epoch"` (0-based) and
            the logged values. Defaults to `None` (no file).
        append: bool. Append to an existing log file instead of truncating
            it at the start of training. Defaults to `False`.

    Attributes:
        layer_names: the `<layer name>` part of the per-layer keys.
        records: list of dicts, one per epoch.

    Example:

    >>> import numpy as np, keras
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(256, 8)).astype("float32"), rng.integers(0, 3, 256)
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
    ...                           keras.layers.Dropout(0.5), keras.layers.BatchNormalization(name="bn"),
    ...                           keras.layers.Dense(3, activation="softmax")])
    >>> model.compile("adam", "sparse_categorical_crossentropy")
    >>> history = model.fit(x, y, epochs=2, callbacks=[VarianceShiftMonitor(x[:128])], verbose=0)
    >>> sorted(k for k in history.history if k.startswith("variance_shift"))
    ['variance_shift/bn', 'variance_shift_max', 'variance_shift_mean']
    """

    def __init__(
        self, validation_batch: ArrayLike, *, log_path: str | os.PathLike | None = None, append: bool = False
    ) -> None:
        super().__init__()
        if isinstance(validation_batch, tf.data.Dataset):
            validation_batch = next(iter(validation_batch))
        if isinstance(validation_batch, tuple):
            validation_batch = validation_batch[0]
        leaves = keras.tree.flatten(validation_batch)
        if not leaves or not all(hasattr(leaf, "shape") for leaf in leaves):
            raise _checks.invalid("validation_batch", "an array `x`, a tuple `(x, y)` or a batched `tf.data.Dataset`",
                                  received=f"validation_batch={type(validation_batch).__name__}")
        self.validation_batch = keras.tree.map_structure(to_tensor, validation_batch)
        self.log_file = jsonl_file(log_path, "variance_shift.jsonl")
        self.append = append
        self.records = []
        self.layer_names = None
        self._probe = None
        self._probe_with_outputs = None
        self._probe_model = None
        self._warned = False

    def on_train_begin(self, logs=None):
        if self.log_file is not None:
            prepare_jsonl(self.log_file, self.append)

    def _build(self):
        model = self.model
        layers = batch_norm_layers(model)
        self._probe_model = model
        self.layer_names = _unique_names(layers)

        def ratio(layer, inputs, moving_variance):
            inputs = keras.ops.cast(inputs, "float32")
            axis = layer.axis % len(inputs.shape)
            reduce_axes = [i for i in range(len(inputs.shape)) if i != axis]
            variance = keras.ops.var(inputs, axis=reduce_axes)
            moving = keras.ops.cast(moving_variance, "float32")
            return keras.ops.mean((variance + layer.epsilon) / (moving + layer.epsilon))

        # Keras has no forward hooks, and a `keras.Model(model.inputs,
        # bn.input)` probe cannot reach layers inside nested models or
        # custom blocks. Wrapping each BN layer's `call` while the function
        # is traced records its input wherever it sits; the wrappers are
        # removed before tracing ends, so the layers are left untouched.
        def probe(call_model, x):
            seen = {}
            # A shared layer is measured on its first call. The moving variance is read
            # inside the model call, where JAX's stateless call holds its current value.
            with inputs_recorded(layers, lambda layer, inputs: seen.setdefault(
                    id(layer), (inputs, layer.moving_variance.value))):
                outputs, _ = call_model(x)
            # A BN layer the forward pass never reaches has nothing to report.
            return {
                name: ratio(layer, *seen[id(layer)])
                for name, layer in zip(self.layer_names, layers)
                if id(layer) in seen
            }, outputs

        # Each is traced on its first call only: training never compiles the second, nor either without BN.
        self._probe = compile_inference(model, lambda call_model, x: probe(call_model, x)[0])
        self._probe_with_outputs = compile_inference(model, probe)

    def measure(self):
        """Per-layer variance-shift ratios and the model's inference-mode outputs on the validation batch.

        Both come from one compiled call, so a caller that also needs the
        outputs (e.g. `diagnose`, reading whether a head gives probabilities)
        runs the model once.

        Returns:
            Tuple `(ratios, outputs)`: a dict mapping `layer_names` to float
            ratios (empty without BatchNormalization layers) and an np.ndarray.

        Example:

        >>> ratios, outputs = monitor.measure()  # doctest: +SKIP
        """
        if self._probe_model is not self.model:
            self._build()
        ratios, outputs = self._probe_with_outputs(self.validation_batch)
        return self._floats(ratios), keras.ops.convert_to_numpy(outputs)

    def _floats(self, ratios):
        return {name: float(ratios[name]) for name in self.layer_names if name in ratios}

    def variance_shift(self):
        """Per-layer variance-shift ratios on the validation batch.

        Returns:
            Dict mapping `layer_names` to float ratios (empty without
            BatchNormalization layers).
        """
        if self._probe_model is not self.model:
            self._build()
        if not self.layer_names:
            return {}
        return self._floats(self._probe(self.validation_batch))

    def on_epoch_end(self, epoch, logs=None):
        ratios = self.variance_shift()
        if not ratios:
            if not self._warned:
                warnings.warn(
                    "VarianceShiftMonitor found no BatchNormalization layer "
                    f"in model {self.model.name!r}; nothing is logged.",
                    stacklevel=2,
                )
                self._warned = True
            return
        values = {f"variance_shift/{name}": r for name, r in ratios.items()}
        values["variance_shift_mean"] = float(np.mean(list(ratios.values())))
        values["variance_shift_max"] = largest_shift(ratios)
        if logs is not None:
            logs.update(values)
        record = {"epoch": int(epoch), **values}
        self.records.append(record)
        if self.log_file is not None:
            append_jsonl(self.log_file, record)
