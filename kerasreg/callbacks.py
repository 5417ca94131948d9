"""Callbacks that measure what Dropout and BatchNormalization do to a model.

* `OverfittingGap` logs the gap between validation and training metrics
  twice: as Keras reports it (running training-mode means over the epoch)
  and "clean", with the training metrics re-evaluated in inference mode on a
  fixed training subset at the end of each epoch. The Keras FAQ ("Why is my
  training loss much higher than my testing loss?") explains why the
  reported numbers are not comparable: regularisation such as Dropout
  (Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from
  Overfitting", JMLR 2014) is active when training metrics are collected,
  BatchNormalization (Ioffe & Szegedy, "Batch Normalization: Accelerating
  Deep Network Training by Reducing Internal Covariate Shift", ICML 2015)
  uses batch statistics there, and the weights move during the epoch.
* `GapEarlyStopping` stops training when the clean gap exceeds a threshold
  or keeps growing, and restores the weights of the best validation epoch.
* `VarianceShiftMonitor` logs the "variance shift" of every
  BatchNormalization layer: the variance a BN layer sees at inference
  divided by the moving variance it learned during training (Li, Chen, Hu &
  Yang, "Understanding the Disharmony between Dropout and Batch
  Normalization by Variance Shift", CVPR 2019). Dropout feeding BN makes the
  two disagree.

All three are plain `keras.callbacks.Callback`s that write into the `logs`
dict of `on_epoch_end`, so `History`, `CSVLogger` and `TensorBoard` record
their values as long as they come *after* them in the `callbacks` list
(`History` and the progress bar are always last).
"""

import json
import math
import os
import warnings

import numpy as np

from kerasreg import _backend  # noqa: F401  (must run before Keras is imported)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["OverfittingGap", "GapEarlyStopping", "VarianceShiftMonitor"]

_DEFAULT_SUBSET_SIZE = 1000
_ACCURACY_KEYS = ("accuracy", "sparse_categorical_accuracy", "categorical_accuracy", "acc")


def _jsonl_file(log_path, default_name):
    """Resolve `log_path` (a directory or a `.jsonl` file) to a file path."""
    if log_path is None:
        return None
    log_path = os.fspath(log_path)
    if log_path.endswith(".jsonl"):
        return log_path
    return os.path.join(log_path, default_name)


def _prepare_jsonl(path, append):
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    if not append:
        open(path, "w").close()


def _append_jsonl(path, record):
    # Strict JSON has no NaN/Infinity: a diverged run writes null instead of
    # a line that `json.loads` in other languages would reject.
    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()
    }
    # Opened per epoch so a crash mid-training still leaves complete lines.
    with open(path, "a") as f:
        f.write(json.dumps(clean, allow_nan=False) + "\n")
        f.flush()


def _num_rows(data, argument):
    """Number of examples in `(x, y)` arrays, an array, or a dataset."""
    if isinstance(data, tf.data.Dataset):
        n = int(data.cardinality())
        if n == tf.data.INFINITE_CARDINALITY:
            raise ValueError(
                f"Invalid value received for argument `{argument}`. Expected a "
                "finite dataset. Received: an infinite dataset (remove "
                "`.repeat()`)."
            )
        if n == tf.data.UNKNOWN_CARDINALITY:
            n = int(data.reduce(np.int64(0), lambda count, _: count + 1))
        return n
    if isinstance(data, (tuple, list)):
        data = data[0]
    leaves = keras.tree.flatten(data)
    if not leaves or not hasattr(leaves[0], "shape"):
        raise ValueError(
            f"Invalid value received for argument `{argument}`. Expected a "
            "tuple `(x, y)` of arrays or a `tf.data.Dataset` of `(x, y)` "
            f"pairs. Received: {argument}={type(data).__name__}"
        )
    return int(leaves[0].shape[0])


def _materialise_subset(train_data, indices):
    """Rows `indices` (sorted) of `train_data` as numpy `(x, y)`."""
    if isinstance(train_data, tf.data.Dataset):
        n = _num_rows(train_data, "train_data")
        keep = np.zeros(n, dtype=bool)
        keep[indices] = True
        keep = tf.constant(keep)
        # One pass over the data, keeping the drawn rows: the full training
        # set never has to fit in memory.
        subset = (
            train_data.enumerate()
            .filter(lambda i, element: tf.gather(keep, i))
            .map(lambda i, element: (element[0], element[1]))
            .batch(len(indices))
            .get_single_element()
        )
        return keras.tree.map_structure(lambda t: t.numpy(), subset)
    if not isinstance(train_data, (tuple, list)) or len(train_data) < 2:
        raise ValueError(
            "Invalid value received for argument `train_data`. Expected a "
            "tuple `(x, y)` of arrays or an unbatched `tf.data.Dataset` of "
            f"`(x, y)` pairs. Received: train_data={type(train_data).__name__}"
        )
    x, y = train_data[0], train_data[1]
    x = keras.tree.map_structure(lambda a: np.asarray(a)[indices], x)
    return x, np.asarray(y)[indices]


def _to_tensor(array):
    # Cast floats to floatx as `fit` does, so inference here sees the same
    # inputs as `evaluate` would.
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(keras.backend.floatx())
    return tf.convert_to_tensor(array)


class OverfittingGap(keras.callbacks.Callback):
    """Logs the overfitting gap, as Keras reports it and measured cleanly.

    At the end of every epoch the model is re-evaluated in inference mode on
    a fixed subset of the training data (drawn once, with `seed`), and the
    following keys are added to the epoch `logs`:

    - `train_clean_loss`, `train_clean_accuracy`: loss and accuracy on the
      training subset in inference mode, with the model's compiled loss plus
      its regularisation losses (as `model.evaluate` computes them) and
      accuracy as argmax match.
    - `clean_gap_loss = val_loss - train_clean_loss` and
      `clean_gap_accuracy = train_clean_accuracy - val_accuracy`: the gap to
      compare models by.
    - `reported_gap_loss = val_loss - loss` and
      `reported_gap_accuracy = accuracy - val_accuracy`: the gap as the Keras
      progress bar suggests it.

    The accuracy keys are logged only when the model was compiled with an
    accuracy metric (`"accuracy"`, `"sparse_categorical_accuracy"`, ...).

    Training vs inference: Keras's `loss`/`accuracy` are running means over
    the epoch in training mode (Dropout drops units, BatchNormalization
    normalises with batch statistics, weights change from batch to batch),
    while `val_*` are computed in inference mode with the end-of-epoch
    weights. The reported gap therefore mixes regularisation noise into the
    gap (it is often negative with strong dropout); the clean gap does not.

    The subset is evaluated in one compiled `tf.function` (built on the
    first epoch end, in chunks of `batch_size` rows), not with
    `model.evaluate`, so the callback costs a few percent of a small epoch.

    Place it before `GapEarlyStopping`, `CSVLogger` and `TensorBoard` in the
    `callbacks` list so they see its keys. `fit` needs validation data
    evaluated every epoch.

    Args:
        train_data: tuple `(x, y)` of arrays (`x` may be a dict of arrays)
            or an unbatched `tf.data.Dataset` of `(x, y)` pairs (further
            elements such as sample weights are ignored). Only the subset is
            kept, as numpy arrays in `subset`.
        subset_size: int. Number of training examples to evaluate. Defaults
            to `None`: the size of `validation_data` if given, else 1000,
            capped at the number of training examples.
        validation_data: tuple `(x, y)`, array or unbatched
            `tf.data.Dataset`, used only to size the subset like the
            validation set (so both gaps compare equally noisy estimates).
            Defaults to `None`.
        seed: int or None. Seed of the subset draw. Defaults to `0`.
        batch_size: int. Rows per forward pass when evaluating the subset.
            Defaults to `1024`.
        log_path: str or path-like. A directory, in which `gaps.jsonl` is
            written, or a path ending in `.jsonl`. One JSON object per epoch
            with `"epoch"` (0-based, as in `CSVLogger` and `History.epoch`)
            and the logged values; non-finite values are written as `null`.
            Defaults to `None` (no file).
        append: bool. Append to an existing log file instead of truncating
            it at the start of training (use when resuming). Defaults to
            `False`.
        evaluate_validation: bool. Evaluate `validation_data` too, in the
            same compiled call, and write `val_loss` / `val_<accuracy>` into
            the logs, so `fit` can run without `validation_data` (its own
            validation pass costs more per epoch on small models).
            Defaults to `False`.

    Attributes:
        subset: tuple `(x, y)` of numpy arrays, the training subset.
        subset_indices: sorted indices of the subset rows in `train_data`.
        records: list of dicts, one per epoch, as written to `log_path`.

    Example:

    >>> import numpy as np, keras
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(200, 8)).astype("float32"), rng.integers(0, 3, 200)
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
    ...                           keras.layers.Dropout(0.5), keras.layers.Dense(3, activation="softmax")])
    >>> model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> gap = OverfittingGap((x[:150], y[:150]), validation_data=(x[150:], y[150:]))
    >>> history = model.fit(x[:150], y[:150], validation_data=(x[150:], y[150:]),
    ...                     epochs=2, callbacks=[gap], verbose=0)
    >>> sorted(k for k in history.history if "gap" in k)
    ['clean_gap_accuracy', 'clean_gap_loss', 'reported_gap_accuracy', 'reported_gap_loss']
    """

    def __init__(
        self,
        train_data,
        *,
        subset_size=None,
        validation_data=None,
        seed=0,
        batch_size=1024,
        log_path=None,
        append=False,
        evaluate_validation=False,
    ):
        super().__init__()
        num_train = _num_rows(train_data, "train_data")
        if evaluate_validation and validation_data is None:
            raise ValueError("`evaluate_validation=True` needs `validation_data`.")
        if subset_size is None:
            if validation_data is not None:
                subset_size = _num_rows(validation_data, "validation_data")
            else:
                subset_size = _DEFAULT_SUBSET_SIZE
            subset_size = min(subset_size, num_train)
        if (
            isinstance(subset_size, bool)
            or not isinstance(subset_size, (int, np.integer))
            or not 1 <= subset_size <= num_train
        ):
            raise ValueError(
                "Invalid value received for argument `subset_size`. Expected "
                f"an int in [1, {num_train}] (the number of training "
                f"examples). Received: subset_size={subset_size!r}"
            )
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
        ):
            raise ValueError(
                "Invalid value received for argument `batch_size`. Expected "
                f"a positive int. Received: batch_size={batch_size!r}"
            )
        rng = np.random.default_rng(seed)
        self.subset_indices = np.sort(rng.choice(num_train, int(subset_size), replace=False))
        self.subset = _materialise_subset(train_data, self.subset_indices)
        self.validation = None
        if evaluate_validation:
            num_val = _num_rows(validation_data, "validation_data")
            self.validation = _materialise_subset(validation_data, np.arange(num_val))
        self.batch_size = int(batch_size)
        self.log_file = _jsonl_file(log_path, "gaps.jsonl")
        self.append = append
        self.records = []
        self._chunks = None
        self._val_chunks = None
        self._evaluate_fn = None
        self._evaluate_model = None

    def on_train_begin(self, logs=None):
        if self.log_file is not None:
            _prepare_jsonl(self.log_file, self.append)

    def _build(self):
        """Compile the subset evaluation once per model."""
        model = self.model
        loss = model.loss
        if isinstance(loss, (list, tuple)) and len(loss) == 1:
            loss = loss[0]
        if isinstance(loss, dict) and len(loss) == 1:
            loss = next(iter(loss.values()))
        if loss is None or isinstance(loss, (list, tuple, dict)):
            raise ValueError(
                "OverfittingGap needs a model compiled with a single loss, "
                "e.g. `model.compile(loss='sparse_categorical_crossentropy', "
                f"metrics=['accuracy'])`. Received: loss={model.loss!r}"
            )
        loss_fn = keras.losses.get(loss) if isinstance(loss, str) else loss
        if isinstance(loss_fn, keras.losses.Loss):
            # `Loss.call` gives per-example values, so chunks can be summed
            # and divided once, whatever the object's reduction.
            loss_fn = loss_fn.call

        x, y = self.subset
        x_rank = np.ndim(keras.tree.flatten(x)[0])
        model_inputs = getattr(model, "inputs", None)
        if model_inputs and x_rank != len(model_inputs[0].shape):
            raise ValueError(
                "OverfittingGap received training examples of rank "
                f"{x_rank} but the model expects inputs of rank "
                f"{len(model_inputs[0].shape)} (with the batch axis). Pass an "
                "unbatched dataset: `dataset.unbatch()`."
            )
        one_hot = np.ndim(y) >= 2 and np.shape(y)[-1] > 1
        self._chunks = self._split(*self.subset)
        if self.validation is not None:
            self._val_chunks = self._split(*self.validation)

        # reduce_retracing: the last chunk is smaller; one extra trace at most.
        @tf.function(reduce_retracing=True)
        def evaluate(x_chunk, y_chunk):
            y_pred = model(x_chunk, training=False)
            y_pred = tf.cast(y_pred, "float32")
            loss_sum = tf.reduce_sum(tf.cast(loss_fn(y_chunk, y_pred), "float32"))
            if one_hot:
                labels = tf.argmax(y_chunk, axis=-1)
            else:
                labels = tf.reshape(tf.cast(y_chunk, "int64"), [-1])
            correct = tf.reduce_sum(
                tf.cast(tf.equal(tf.argmax(y_pred, axis=-1), labels), "float32")
            )
            # `evaluate` adds the regularisation losses (`model.losses`) to
            # val_loss; leaving them out here would bias the loss gap.
            extra = (
                tf.add_n([tf.cast(v, "float32") for v in model.losses])
                if model.losses
                else tf.zeros(())
            )
            return tf.stack([loss_sum, correct, extra * tf.cast(tf.shape(labels)[0], "float32")])

        self._evaluate_fn = evaluate
        self._evaluate_model = model

    def _split(self, x, y):
        """Tensor chunks of `batch_size` rows, made once."""
        return [
            (
                keras.tree.map_structure(lambda a: _to_tensor(a[start : start + self.batch_size]), x),
                _to_tensor(y[start : start + self.batch_size]),
            )
            for start in range(0, len(y), self.batch_size)
        ]

    def _ensure_built(self):
        if self._evaluate_fn is None or self._evaluate_model is not self.model:
            self._build()

    def _evaluate(self, split):
        """`(loss, accuracy)` in inference mode on the `"subset"` or the `"validation"` rows."""
        self._ensure_built()
        return self._totals(self._chunks if split == "subset" else self._val_chunks)

    def _totals(self, chunks):
        totals = sum(self._evaluate_fn(x, y) for x, y in chunks).numpy()
        n = sum(int(y.shape[0]) for _, y in chunks)
        return float((totals[0] + totals[2]) / n), float(totals[1] / n)

    def evaluate(self, x, y):
        """Loss and accuracy of the model on any `(x, y)` arrays, in inference mode.

        Uses the callback's compiled evaluation (built during `fit`), so
        final validation and test numbers share its definitions and need at
        most one more trace (for a new chunk size).

        Returns:
            Tuple of floats `(loss, accuracy)`.

        Example:

        >>> gap.evaluate(x_test, y_test)  # doctest: +SKIP
        (0.97, 0.66)
        """
        self._ensure_built()
        return self._totals(self._split(x, y))

    def evaluate_subset(self):
        """Loss and accuracy on the training subset, in inference mode.

        Returns:
            Tuple of floats `(loss, accuracy)`.
        """
        return self._evaluate("subset")

    def on_epoch_end(self, epoch, logs=None):
        if self.validation is not None and logs is not None:
            # Same compiled function and definitions as the clean train metrics;
            # it replaces fit's own validation pass, which costs more per epoch.
            val_loss, val_accuracy = self._evaluate("validation")
            logs["val_loss"] = val_loss
            accuracy_key = next((k for k in _ACCURACY_KEYS if k in logs), None)
            if accuracy_key is not None:
                logs[f"val_{accuracy_key}"] = val_accuracy
        if logs is None or "val_loss" not in logs:
            raise ValueError(
                "OverfittingGap needs validation metrics, but `val_loss` is "
                "not in the epoch logs. Pass `validation_data` (or "
                "`validation_split`) to `model.fit()` and keep "
                "`validation_freq=1`. Received log keys: "
                f"{sorted(logs or {})}"
            )
        train_loss, train_accuracy = self.evaluate_subset()
        values = {
            "train_clean_loss": train_loss,
            "train_clean_accuracy": train_accuracy,
            "clean_gap_loss": float(logs["val_loss"]) - train_loss,
        }
        if "loss" in logs:
            values["reported_gap_loss"] = float(logs["val_loss"]) - float(logs["loss"])
        accuracy_key = next((k for k in _ACCURACY_KEYS if f"val_{k}" in logs), None)
        if accuracy_key is not None:
            val_accuracy = float(logs[f"val_{accuracy_key}"])
            values["clean_gap_accuracy"] = train_accuracy - val_accuracy
            if accuracy_key in logs:
                values["reported_gap_accuracy"] = float(logs[accuracy_key]) - val_accuracy
        logs.update(values)

        record = {"epoch": int(epoch)}
        for key in ("loss", accuracy_key, "val_loss", f"val_{accuracy_key}"):
            if key is not None and key in logs:
                record[key] = float(logs[key])
        record.update(values)
        self.records.append(record)
        if self.log_file is not None:
            _append_jsonl(self.log_file, record)


def _higher_is_better(metric):
    return any(tag in metric for tag in ("acc", "auc", "precision", "recall"))


class GapEarlyStopping(keras.callbacks.Callback):
    """Stops training when the clean overfitting gap is too large or growing.

    Reads the gap that `OverfittingGap` wrote into the epoch logs (so it
    must come after `OverfittingGap` in the `callbacks` list) and stops when
    either

    - the monitored gap exceeds `threshold`, or
    - it has grown (by more than `min_delta`) for `patience` consecutive
      epochs.

    Independently of why training ends, the weights of the best validation
    epoch (lowest `val_loss`, or highest for accuracy-like metrics such as
    `val_accuracy`) are restored when `restore_best_weights` is set, as
    `keras.callbacks.EarlyStopping` does at the end of training.

    Training vs inference: the monitored gap is the *clean* gap, measured
    in inference mode, so a strong Dropout rate that keeps the running
    training loss high does not hide overfitting from this callback, as it
    would from a stop rule on Keras's reported training loss.

    Args:
        threshold: float or None. Stop as soon as the monitored gap is
            larger than this. Defaults to `None`.
        patience: int or None. Stop once the monitored gap has grown for
            this many consecutive epochs. Defaults to `None`. At least one
            of `threshold` and `patience` is required.
        monitor: str. Log key of the gap to watch, e.g. `"clean_gap_loss"`
            or `"clean_gap_accuracy"` (both grow with overfitting). Defaults
            to `"clean_gap_loss"`.
        min_delta: float. Smallest increase that counts as growth for
            `patience`. Defaults to `0.0`.
        restore_best_weights: bool. Restore the weights of the best
            `best_metric` epoch at the end of training. Defaults to `True`.
        best_metric: str. Validation metric that defines the best epoch;
            lower is better unless its name contains "acc", "auc",
            "precision" or "recall". Defaults to `"val_loss"`.
        verbose: int. 1 prints one line saying why training stopped and
            which weights were restored; 0 is silent. Defaults to `1`.

    Attributes:
        stopped_epoch: 0-based epoch at which training was stopped, or
            `None` (like `EarlyStopping.stopped_epoch`; messages count from
            1 like the progress bar).
        stop_reason: str or None. Why training was stopped.
        best_epoch: 0-based epoch whose weights are (to be) restored.
        best_value: value of `best_metric` at `best_epoch`.

    Example:

    >>> import numpy as np, keras
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(200, 8)).astype("float32"), rng.integers(0, 3, 200)
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(64, activation="relu"),
    ...                           keras.layers.Dense(3, activation="softmax")])
    >>> model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> callbacks = [OverfittingGap((x[:150], y[:150])), GapEarlyStopping(patience=3, verbose=0)]
    >>> history = model.fit(x[:150], y[:150], validation_data=(x[150:], y[150:]),
    ...                     epochs=10, callbacks=callbacks, verbose=0)
    >>> callbacks[1].stop_reason is None or "grew" in callbacks[1].stop_reason
    True
    """

    def __init__(
        self,
        *,
        threshold=None,
        patience=None,
        monitor="clean_gap_loss",
        min_delta=0.0,
        restore_best_weights=True,
        best_metric="val_loss",
        verbose=1,
    ):
        super().__init__()
        if threshold is None and patience is None:
            raise ValueError(
                "GapEarlyStopping needs a stop rule. Expected `threshold` (a "
                "float), `patience` (a positive int) or both. Received: "
                "threshold=None, patience=None"
            )
        if threshold is not None and (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float, np.number))
            or math.isnan(threshold)
        ):
            raise ValueError(
                "Invalid value received for argument `threshold`. Expected a "
                f"float or None. Received: threshold={threshold!r}"
            )
        if patience is not None and (
            isinstance(patience, bool)
            or not isinstance(patience, (int, np.integer))
            or patience < 1
        ):
            raise ValueError(
                "Invalid value received for argument `patience`. Expected a "
                f"positive int or None. Received: patience={patience!r}"
            )
        if not isinstance(min_delta, (int, float, np.number)) or min_delta < 0:
            raise ValueError(
                "Invalid value received for argument `min_delta`. Expected a "
                f"float >= 0. Received: min_delta={min_delta!r}"
            )
        self.threshold = None if threshold is None else float(threshold)
        self.patience = patience
        self.monitor = monitor
        self.min_delta = float(min_delta)
        self.restore_best_weights = restore_best_weights
        self.best_metric = best_metric
        self.verbose = verbose
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = None
        self.stop_reason = None
        self.best_epoch = None
        self.best_value = None
        self.best_weights = None
        self._previous = None

    def on_train_begin(self, logs=None):
        self._reset()

    def _get(self, logs, key, hint):
        if logs is None or key not in logs:
            raise ValueError(
                f"GapEarlyStopping monitors `{key}`, which is not in the "
                f"epoch logs. {hint} Received log keys: {sorted(logs or {})}"
            )
        return float(logs[key])

    def on_epoch_end(self, epoch, logs=None):
        current = self._get(
            logs,
            self.monitor,
            "Put an `OverfittingGap` callback before `GapEarlyStopping` in "
            "the `callbacks` list of `fit()`.",
        )
        if self.restore_best_weights:
            metric = self._get(
                logs,
                self.best_metric,
                "Pass `validation_data` to `fit()` and compile the model "
                "with that metric, change `best_metric`, or set "
                "`restore_best_weights=False`.",
            )
        else:
            metric = float(logs.get(self.best_metric, math.nan))
        if self.best_value is None or (
            metric > self.best_value
            if _higher_is_better(self.best_metric)
            else metric < self.best_value
        ):
            self.best_value = metric
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()

        if self._previous is not None:
            self.wait = self.wait + 1 if current > self._previous + self.min_delta else 0
        self._previous = current

        reason = None
        if self.threshold is not None and current > self.threshold:
            reason = f"{self.monitor}={current:.4g} exceeded threshold={self.threshold:g}"
        elif self.patience is not None and self.wait >= self.patience:
            reason = (
                f"{self.monitor} grew for {self.patience} consecutive epochs (now {current:.4g})"
            )
        if reason is not None:
            self.stop_reason = reason
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        restored = self.restore_best_weights and self.best_weights is not None
        if restored:
            self.model.set_weights(self.best_weights)
        if not self.verbose or (self.stop_reason is None and not restored):
            return
        parts = []
        if self.stop_reason is not None:
            parts.append(
                f"Epoch {self.stopped_epoch + 1}: GapEarlyStopping stopped training: {self.stop_reason}"
            )
        if restored:
            parts.append(
                f"restored weights from epoch {self.best_epoch + 1} "
                f"({self.best_metric}={self.best_value:.4g})"
            )
        message = "; ".join(parts)
        print(message[0].upper() + message[1:] + ".")


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

    The probe is one `tf.function` traced once: it records each BN layer's
    input during an inference-mode call of the model and computes the
    ratios inside the graph.

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

    def __init__(self, validation_batch, *, log_path=None, append=False):
        super().__init__()
        if isinstance(validation_batch, tf.data.Dataset):
            validation_batch = next(iter(validation_batch))
        if isinstance(validation_batch, tuple):
            validation_batch = validation_batch[0]
        leaves = keras.tree.flatten(validation_batch)
        if not leaves or not all(hasattr(leaf, "shape") for leaf in leaves):
            raise ValueError(
                "Invalid value received for argument `validation_batch`. "
                "Expected an array `x`, a tuple `(x, y)` or a batched "
                f"`tf.data.Dataset`. Received: validation_batch={type(validation_batch).__name__}"
            )
        self.validation_batch = keras.tree.map_structure(_to_tensor, validation_batch)
        self.log_file = _jsonl_file(log_path, "variance_shift.jsonl")
        self.append = append
        self.records = []
        self.layer_names = None
        self._probe = None
        self._probe_model = None
        self._warned = False

    def on_train_begin(self, logs=None):
        if self.log_file is not None:
            _prepare_jsonl(self.log_file, self.append)

    def _build(self):
        model = self.model
        layers = batch_norm_layers(model)
        self._probe_model = model
        self.layer_names = _unique_names(layers)
        if not layers:
            self._probe = None
            return

        def ratio(layer, inputs):
            inputs = tf.cast(inputs, "float32")
            axis = layer.axis % len(inputs.shape)
            reduce_axes = [i for i in range(len(inputs.shape)) if i != axis]
            variance = tf.math.reduce_variance(inputs, axis=reduce_axes)
            moving = tf.cast(layer.moving_variance, "float32")
            return tf.reduce_mean((variance + layer.epsilon) / (moving + layer.epsilon))

        # Keras has no forward hooks, and a `keras.Model(model.inputs,
        # bn.input)` probe cannot reach layers inside nested models or
        # custom blocks. Wrapping each BN layer's `call` while the function
        # is traced records its input wherever it sits; the wrappers are
        # removed before tracing ends, so the layers are left untouched.
        @tf.function(reduce_retracing=True)
        def probe(x):
            seen = {}

            def recorder(layer):
                original = layer.call

                def call(inputs, *args, **kwargs):
                    # A shared layer is measured on its first call.
                    seen.setdefault(id(layer), inputs)
                    return original(inputs, *args, **kwargs)

                return call

            for layer in layers:
                layer.call = recorder(layer)
            try:
                model(x, training=False)
            finally:
                for layer in layers:
                    del layer.call
            # A BN layer the forward pass never reaches has nothing to report.
            return {
                name: ratio(layer, seen[id(layer)])
                for name, layer in zip(self.layer_names, layers)
                if id(layer) in seen
            }

        self._probe = probe

    def variance_shift(self):
        """Per-layer variance-shift ratios on the validation batch.

        Returns:
            Dict mapping `layer_names` to float ratios (empty without
            BatchNormalization layers).
        """
        if self._probe_model is not self.model:
            self._build()
        if self._probe is None:
            return {}
        ratios = self._probe(self.validation_batch)
        return {name: float(ratios[name]) for name in self.layer_names if name in ratios}

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
        values["variance_shift_max"] = float(max(max(r, 1.0 / r) for r in ratios.values()))
        if logs is not None:
            logs.update(values)
        record = {"epoch": int(epoch), **values}
        self.records.append(record)
        if self.log_file is not None:
            _append_jsonl(self.log_file, record)
