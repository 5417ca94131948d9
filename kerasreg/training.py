"""train(): the fast CPU training loop with honest overfitting gaps, resume and determinism.

A run directory holds everything a run writes while it trains:
`history.csv` (per-epoch metrics and gaps), `gaps.jsonl`,
`variance_shift.jsonl`, TensorBoard `logs/`, a `backup/` checkpoint after
every epoch (removed when the run completes) and the final `model.keras`.
Killed runs continue from their last completed epoch with `resume=True`
and end with the same metrics as an uninterrupted run.
"""

import csv
import dataclasses
import json
import math
import os
import pathlib
import random
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from kerasreg.callbacks import OverfittingGap, VarianceShiftMonitor, batch_norm_layers

VARIANCE_SHIFT_BATCH = 256
GAP_KEYS = ("clean_gap_loss", "clean_gap_accuracy", "reported_gap_loss", "reported_gap_accuracy")


class TrainingFailed(RuntimeError):
    """Raised when a run diverges (NaN or inf loss); the run is recorded as failed."""


@dataclasses.dataclass
class RunResult:
    """What a finished run produced.

    Attributes:
        model: the trained `keras.Model`.
        config: dict. The model's `kerasreg_config` plus the training settings
            (dataset, split seed, epochs, batch size, optimizer, ...).
        history: dict of per-epoch lists (Keras metrics, gaps, variance shift,
            `epoch_time`), over all epochs including those before a resume.
        val_metrics: dict. Final `loss` and `accuracy` on the validation split.
        test_metrics: dict. `loss` and `accuracy` on the test split, computed
            once after training and never used for selection.
        gaps: dict. The last epoch's clean and reported gaps.
        epoch_times: list of float. Seconds per epoch.
        run_dir: pathlib.Path or None.
        stop_reason: str or None. Why training ended before `epochs`.
        clean_subset_indices: np.ndarray. Rows of the train split on which
            the clean gap was measured.
    """

    model: keras.Model
    config: dict
    history: dict
    val_metrics: dict
    test_metrics: dict
    gaps: dict
    epoch_times: list
    run_dir: pathlib.Path = None
    stop_reason: str = None
    clean_subset_indices: np.ndarray = None

    @property
    def variance_shift_max(self):
        """The last epoch's largest BatchNorm variance shift, or None without BatchNorm."""
        values = self.history.get("variance_shift_max")
        return values[-1] if values else None


def seed_everything(seed):
    """Seed Python, NumPy and TensorFlow and make TensorFlow ops deterministic.

    Example:

    >>> seed_everything(0)
    """
    keras.utils.set_random_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    tf.config.experimental.enable_op_determinism()


def check_positive_int(value, name):
    """Raise a ValueError naming `name` unless `value` is a positive int.

    Example:

    >>> check_positive_int(50, "epochs")
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected a positive int. "
            f"Received: {name}={value!r}"
        )


def make_optimizer(optimizer, learning_rate):
    """A Keras optimizer from its name and learning rate, with a clear error for bad names.

    Example:

    >>> type(make_optimizer("sgd", 0.1)).__name__
    'SGD'
    """
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) \
            or not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(
            "Invalid value received for argument `learning_rate`. Expected a positive float. "
            f"Received: learning_rate={learning_rate!r}"
        )
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    names = ["adam", "adamw", "sgd", "rmsprop", "nadam", "adagrad", "adadelta", "adamax", "lion"]
    if optimizer not in names:
        raise ValueError(
            "Invalid value received for argument `optimizer`. Expected one of "
            f"{', '.join(names)}. Received: optimizer={optimizer!r}"
        )
    return keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": learning_rate}})


class _EpochSeeds(keras.callbacks.Callback):
    """Resets every random layer's seed state from (its seed, epoch) at each epoch start.

    Dropout noise then depends only on the epoch, not on how many steps ran
    in this process, which is what makes a resumed run equal an
    uninterrupted one.
    """

    def on_train_begin(self, logs=None):
        self._generators = [
            g for layer in self.model._flatten_layers() for g in getattr(layer, "_seed_generators", [])
        ]
        self._first = [int(g.state.numpy()[0]) for g in self._generators]

    def on_epoch_begin(self, epoch, logs=None):
        for generator, first in zip(self._generators, self._first):
            generator.state.assign(np.array([first, epoch * 100_003], dtype=generator.state.dtype))


class _DivergenceGuard(keras.callbacks.Callback):
    """Stops at the first NaN or inf loss and remembers the epoch."""

    def __init__(self):
        super().__init__()
        self.message = None

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.message = (
                f"Training diverged: loss became {loss} at epoch {epoch + 1}. "
                "Lower the learning rate or check the inputs."
            )
            self.model.stop_training = True


class _EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_time` (seconds) to the logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_time"] = time.perf_counter() - self._start


class _EpochProgress(keras.callbacks.Callback):
    """One line per epoch with the numbers this package is about."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        parts = [f"epoch {epoch + 1}/{self.epochs}"]
        for key, label in [("loss", "loss"), ("accuracy", "acc"), ("val_loss", "val_loss"),
                           ("val_accuracy", "val_acc"), ("clean_gap_accuracy", "clean_gap_acc"),
                           ("reported_gap_accuracy", "reported_gap_acc")]:
            if key in logs:
                parts.append(f"{label} {logs[key]:.4f}")
        if "epoch_time" in logs:
            parts.append(f"{logs['epoch_time']:.2f}s")
        print("  ".join(parts), file=sys.stderr, flush=True)


def _returned_epoch(callbacks):
    """History index of the weights `train` returns: the restored best epoch, else the last."""
    for callback in callbacks:
        best = getattr(callback, "best_epoch", None)
        if getattr(callback, "restore_best_weights", False) and best is not None:
            return best
    return -1


def _completed_epochs(backup_dir):
    """Epochs finished before the last checkpoint, read from Keras's backup metadata."""
    metadata = backup_dir / "training_metadata.json"
    if not metadata.exists():
        return 0
    return int(json.loads(metadata.read_text())["epoch"])


def _truncate_logs(run_dir, epochs_done):
    """Drop log lines of epochs after the checkpoint (written just before a kill)."""
    history = run_dir / "history.csv"
    if history.exists():
        lines = history.read_text().splitlines(keepends=True)
        history.write_text("".join(lines[: 1 + epochs_done]) if epochs_done else "")
    for name in ("gaps.jsonl", "variance_shift.jsonl"):
        path = run_dir / name
        if path.exists():
            lines = path.read_text().splitlines(keepends=True)
            path.write_text("".join(lines[:epochs_done]))


def read_history(path):
    """Per-epoch history from a `history.csv` as a dict of float lists.

    Example:

    >>> read_history("saved_models/run/history.csv")["val_accuracy"][-1]  # doctest: +SKIP
    0.93
    """
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = rows[0].keys() if rows else []
    return {c: [float(r[c]) if r[c] not in ("", None) else float("nan") for r in rows] for c in columns}


def _write_status(run_dir, status, **fields):
    (run_dir / "status.json").write_text(json.dumps({"status": status, **fields}, indent=2))


def _compile(model, optimizer, learning_rate, steps_per_execution):
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )


def train(
    model,
    dataset,
    *,
    epochs=50,
    batch_size=100,
    optimizer="adam",
    learning_rate=1e-3,
    seed=0,
    run_dir=None,
    callbacks=(),
    resume=False,
    verbose=1,
):
    """Train a model on a dataset and measure its overfitting gaps honestly.

    Training vs inference: Keras's `loss`/`accuracy` are running means in
    training mode (dropout on, batch statistics). After every epoch the
    model is also evaluated in inference mode on a fixed training subset
    as large as the validation split; `clean_gap_*` compares that with
    validation and is the number to compare placements by, while
    `reported_gap_*` is what the Keras progress bar suggests. With
    BatchNormalization in the model, `variance_shift_*` logs how far the
    inference-mode input variance of each BN layer is from its moving
    variance (Li et al., CVPR 2019).

    Args:
        model: keras.Model. Built model with a softmax output, e.g. from `build_model`.
        dataset: `kerasreg.data.Dataset` from `load_dataset`.
        epochs: int. Defaults to `50`.
        batch_size: int. Defaults to `100`.
        optimizer: str or keras optimizer. Defaults to `"adam"`.
        learning_rate: float. Defaults to `1e-3`.
        seed: int. Seeds Python, NumPy and TensorFlow, enables deterministic
            ops, and fixes data order and dropout noise per epoch. Defaults to `0`.
        run_dir: str or path or None. Where logs, checkpoints and the final
            `model.keras` go; `None` keeps everything in memory. Defaults to `None`.
        callbacks: extra Keras callbacks (e.g. `GapEarlyStopping`); they run
            after the gap callbacks, so they see the gap keys. Defaults to `()`.
        resume: bool. Continue from the last completed epoch checkpointed in
            `run_dir`. Defaults to `False`.
        verbose: int. 1 prints a line per epoch on stderr; 0 is silent. Defaults to `1`.

    Returns:
        `RunResult`.

    Raises:
        TrainingFailed: the loss became NaN or inf; `run_dir/status.json` says so.

    Example:

    >>> import kerasreg
    >>> data = kerasreg.load_dataset("mnist1d")
    >>> model = kerasreg.build_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes, seed=0)
    >>> result = kerasreg.train(model, data, epochs=2, verbose=0)
    >>> sorted(result.gaps)
    ['clean_gap_accuracy', 'clean_gap_loss', 'reported_gap_accuracy', 'reported_gap_loss']
    """
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    if resume and run_dir is None:
        raise ValueError("`resume=True` needs a `run_dir` holding the checkpoint to resume from.")
    make_optimizer(optimizer, learning_rate)
    seed_everything(seed)

    run_dir = pathlib.Path(run_dir) if run_dir is not None else None
    initial_epoch = 0
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            initial_epoch = _completed_epochs(run_dir / "backup")
            _truncate_logs(run_dir, initial_epoch)
        else:
            # BackupAndRestore would otherwise silently continue from an old checkpoint.
            shutil.rmtree(run_dir / "backup", ignore_errors=True)
        _write_status(run_dir, "running")

    x_train, y_train = dataset.as_numpy("train")
    x_val, y_val = dataset.as_numpy("val")
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    # One tf.function call per epoch: on small data Python overhead per step dominates.
    _compile(model, optimizer, learning_rate, steps_per_execution=steps_per_epoch)

    append = initial_epoch > 0
    gap = OverfittingGap((x_train, y_train), validation_data=(x_val, y_val), evaluate_validation=True,
                         subset_size=min(len(x_val), len(x_train)), seed=seed, log_path=run_dir, append=append)
    guard = _DivergenceGuard()
    all_callbacks = [_EpochSeeds(), gap]
    if batch_norm_layers(model):
        all_callbacks.append(VarianceShiftMonitor(x_val[:VARIANCE_SHIFT_BATCH], log_path=run_dir, append=append))
    all_callbacks += [*callbacks, _EpochTimer(), guard]
    if verbose:
        all_callbacks.append(_EpochProgress(epochs))
    if run_dir is not None:
        all_callbacks += [
            keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=append),
            keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False, profile_batch=0),
            keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        ]

    history = model.fit(
        dataset.pipeline("train", batch_size, shuffle=True, seed=seed, initial_epoch=initial_epoch),
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        callbacks=all_callbacks,
        shuffle=False,  # the pipeline shuffles, seeded per epoch
        verbose=0,
    )
    if guard.message:
        if run_dir is not None:
            _write_status(run_dir, "failed", reason=guard.message)
        raise TrainingFailed(guard.message)

    full_history = read_history(run_dir / "history.csv") if run_dir is not None else history.history
    full_history.pop("epoch", None)
    final_epoch = _returned_epoch(callbacks)
    # The gap callback's compiled inference pass: the same definitions as the logged metrics.
    val_metrics = dict(zip(("loss", "accuracy"), gap.evaluate(x_val, y_val)))
    test_metrics = dict(zip(("loss", "accuracy"), gap.evaluate(*dataset.as_numpy("test"))))
    stop_reason = next((c.stop_reason for c in callbacks if getattr(c, "stop_reason", None)), None)
    config = {
        **(getattr(model, "kerasreg_config", None) or {}),
        "dataset": dataset.name,
        "validation_split": dataset.validation_split,
        "split_seed": dataset.split_seed,
        "standardize": dataset.standardized,
        "epochs": epochs,
        "epochs_run": len(full_history.get("loss", [])),
        "batch_size": batch_size,
        "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__.lower(),
        "learning_rate": learning_rate,
        "seed": seed,
    }
    result = RunResult(
        model=model,
        config=config,
        history=full_history,
        val_metrics={k: float(val_metrics[k]) for k in ("loss", "accuracy")},
        test_metrics={k: float(test_metrics[k]) for k in ("loss", "accuracy")},
        gaps={k: full_history[k][final_epoch] for k in GAP_KEYS},
        epoch_times=full_history.get("epoch_time", []),
        run_dir=run_dir,
        stop_reason=stop_reason,
        clean_subset_indices=gap.subset_indices,
    )
    if run_dir is not None:
        # Saved under a temporary name first: a kill mid-save must not leave a broken model.keras.
        partial = run_dir / "model.partial.keras"
        model.save(partial)
        os.replace(partial, run_dir / "model.keras")
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
        _write_status(run_dir, "completed", val_metrics=result.val_metrics,
                      test_metrics=result.test_metrics, gaps=result.gaps)
    return result
