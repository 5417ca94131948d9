"""Early stopping that survives a kill: `GapEarlyStopping` (stop when the clean overfitting gap exceeds a threshold
or keeps growing) and `ResumableEarlyStopping` (Keras's `EarlyStopping`).

Both keep their state across epochs (best value, best weights, patience
count) in the run's checkpoint through `state_dict` / `load_state_dict`, so
a resumed run stops at the same epoch with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import math

import keras

from kerasreg import _checks


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
    >>> from kerasreg import OverfittingGap
    >>> callbacks = [OverfittingGap((x[:150], y[:150])), GapEarlyStopping(patience=3, verbose=0)]
    >>> history = model.fit(x[:150], y[:150], validation_data=(x[150:], y[150:]),
    ...                     epochs=10, callbacks=callbacks, verbose=0)
    >>> callbacks[1].stop_reason is None or "grew" in callbacks[1].stop_reason
    True
    """

    def __init__(
        self,
        *,
        threshold: float | None = None,
        patience: int | None = None,
        monitor: str = "clean_gap_loss",
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
        best_metric: str = "val_loss",
        verbose: int = 1,
    ) -> None:
        super().__init__()
        if threshold is None and patience is None:
            raise ValueError(
                "GapEarlyStopping needs a stop rule. Expected `threshold` (a "
                "float), `patience` (a positive int) or both. Received: "
                "threshold=None, patience=None"
            )
        if threshold is not None and (not _checks.is_real(threshold) or math.isnan(threshold)):
            raise _checks.invalid("threshold", "a float or None", threshold)
        if patience is not None and (not _checks.is_int(patience) or patience < 1):
            raise _checks.invalid("patience", "a positive int or None", patience)
        if not _checks.is_real(min_delta) or not min_delta >= 0:
            raise _checks.invalid("min_delta", "a float >= 0", min_delta)
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

    def state_dict(self):
        """State across epochs, for the run's checkpoint (`best_weights` as a list of arrays)."""
        return {"wait": self.wait, "stopped_epoch": self.stopped_epoch, "stop_reason": self.stop_reason,
                "best_epoch": self.best_epoch, "best_value": self.best_value,
                "best_weights": self.best_weights, "previous": self._previous}

    def load_state_dict(self, state):
        """Take back what `state_dict` returned (called when a run resumes)."""
        for key, value in state.items():
            setattr(self, "_previous" if key == "previous" else key, value)

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


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras's `EarlyStopping`, with its state across epochs kept in kerasreg's checkpoint.

    Same arguments and behaviour as `keras.callbacks.EarlyStopping`; adds
    `state_dict` / `load_state_dict` so that `train(..., resume=True)`
    continues the patience count, the best value and the best weights where
    the killed run left them. `train_in` uses it for a run's `patience`.

    Training vs inference: it watches validation metrics, computed in
    inference mode (dropout off, BatchNorm's moving statistics).

    Example:

    >>> stopper = ResumableEarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    >>> sorted(stopper.state_dict())
    ['best', 'best_epoch', 'best_weights', 'stopped_epoch', 'wait']
    """

    _STATE = ("wait", "stopped_epoch", "best", "best_epoch", "best_weights")

    def state_dict(self):
        """State across epochs, for the run's checkpoint (`best_weights` as a list of arrays)."""
        return {key: getattr(self, key, None) for key in self._STATE}

    def load_state_dict(self, state):
        """Take back what `state_dict` returned (called when a run resumes)."""
        for key in self._STATE:
            setattr(self, key, state[key])
