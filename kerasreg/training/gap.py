"""`OverfittingGap`: the overfitting gap as Keras reports it, and measured cleanly.

The Keras FAQ ("Why is my training loss much higher than my testing loss?")
explains why the reported numbers are not comparable: regularisation such as
Dropout (Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks
from Overfitting", JMLR 2014) is active when training metrics are collected,
BatchNormalization (Ioffe & Szegedy, "Batch Normalization: Accelerating Deep
Network Training by Reducing Internal Covariate Shift", ICML 2015) uses batch
statistics there, and the weights move during the epoch. The clean gap
re-evaluates a fixed training subset in inference mode at every epoch end.

Like every kerasreg callback it writes into the `logs` dict of
`on_epoch_end`, so `History`, `CSVLogger` and `TensorBoard` record its values
as long as they come *after* it in the `callbacks` list.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import keras
import numpy as np
from numpy.typing import ArrayLike

from kerasreg import _checks
from kerasreg.training.evaluator import Evaluator, materialise_subset, num_rows
from kerasreg.training.jsonl import append_jsonl, jsonl_file, prepare_jsonl

if TYPE_CHECKING:
    import tensorflow as tf


__all__ = ["OverfittingGap"]

_DEFAULT_SUBSET_SIZE = 1000
_ACCURACY_KEYS = ("accuracy", "sparse_categorical_accuracy", "categorical_accuracy", "acc")


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

    The subset is evaluated in one compiled inference pass (built on the
    first epoch end, in chunks of at most `batch_size` rows), not with
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
        train_data: tuple[ArrayLike, ArrayLike] | tf.data.Dataset,
        *,
        subset_size: int | None = None,
        validation_data: tuple[ArrayLike, ArrayLike] | tf.data.Dataset | None = None,
        seed: int = 0,
        batch_size: int = 1024,
        log_path: str | os.PathLike | None = None,
        append: bool = False,
        evaluate_validation: bool = False,
    ) -> None:
        super().__init__()
        num_train = num_rows(train_data, "train_data")
        if evaluate_validation and validation_data is None:
            raise ValueError("`evaluate_validation=True` needs `validation_data`.")
        if subset_size is None:
            if validation_data is not None:
                subset_size = num_rows(validation_data, "validation_data")
            else:
                subset_size = _DEFAULT_SUBSET_SIZE
            subset_size = min(subset_size, num_train)
        if not _checks.is_int(subset_size) or not 1 <= subset_size <= num_train:
            raise _checks.invalid(
                "subset_size", f"an int in [1, {num_train}] (the number of training examples)", subset_size
            )
        _checks.positive_int(batch_size, "batch_size")
        rng = np.random.default_rng(seed)
        self.subset_indices = np.sort(rng.choice(num_train, int(subset_size), replace=False))
        self.subset = materialise_subset(train_data, self.subset_indices)
        self.validation = None
        if evaluate_validation:
            num_val = num_rows(validation_data, "validation_data")
            self.validation = materialise_subset(validation_data, np.arange(num_val))
        self.batch_size = int(batch_size)
        self.log_file = jsonl_file(log_path, "gaps.jsonl")
        self.append = append
        self.records = []
        self._chunks = None
        self._val_chunks = None
        self._evaluator_ = None

    def on_train_begin(self, logs=None):
        if self.log_file is not None:
            prepare_jsonl(self.log_file, self.append)

    def _evaluator(self):
        """The compiled inference pass for the current model, made on first use."""
        if self._evaluator_ is None or self._evaluator_.model is not self.model:
            self._check_rank()
            self._evaluator_ = Evaluator(self.model, self.batch_size)
            self._chunks = self._evaluator_.chunks(*self.subset)
            if self.validation is not None:
                self._val_chunks = self._evaluator_.chunks(*self.validation)
        return self._evaluator_

    def _check_rank(self):
        x_rank = np.ndim(keras.tree.flatten(self.subset[0])[0])
        model_inputs = getattr(self.model, "inputs", None)
        if model_inputs and x_rank != len(model_inputs[0].shape):
            raise ValueError(
                "OverfittingGap received training examples of rank "
                f"{x_rank} but the model expects inputs of rank "
                f"{len(model_inputs[0].shape)} (with the batch axis). Pass an "
                "unbatched dataset: `dataset.unbatch()`."
            )

    def _evaluate(self, split):
        """`(loss, accuracy)` in inference mode on the `"subset"` or the `"validation"` rows."""
        evaluator = self._evaluator()
        return evaluator.evaluate_chunks(self._chunks if split == "subset" else self._val_chunks)

    def evaluate(self, x, y):
        """Loss and accuracy of the model on any `(x, y)` arrays, in inference mode.

        Uses the callback's compiled evaluation (built during `fit`), so
        final validation and test numbers share its definitions and its
        compiled function.

        Returns:
            Tuple of floats `(loss, accuracy)`.

        Example:

        >>> gap.evaluate(x_test, y_test)  # doctest: +SKIP
        (0.97, 0.66)
        """
        return self._evaluator().evaluate(x, y)

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
            append_jsonl(self.log_file, record)
