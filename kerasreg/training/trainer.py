"""`train`: fit a model on a dataset and measure its overfitting gaps honestly.

`train` reads as its phases: check the arguments, prepare the run directory,
assemble the callbacks, fit, and collect the result from the same compiled
inference pass that measured the gaps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import pathlib
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from kerasreg import _backend, _checks
from kerasreg._files import naming
from kerasreg.training import checkpoint, defaults
from kerasreg.training.epoch_callbacks import DivergenceGuard, EpochProgress, EpochSeeds, EpochTimer
from kerasreg.training.gap import OverfittingGap
from kerasreg.training.inputs import check_model_and_data, warn_unless_probabilities
from kerasreg.training.run_dir import RunDir, run_config
from kerasreg.training.variance_shift import VARIANCE_SHIFT_BATCH, VarianceShiftMonitor, batch_norm_layers

if TYPE_CHECKING:
    from kerasreg.data.dataset import Dataset
    from kerasreg.tracking import MlflowRun

GAP_KEYS = ("clean_gap_loss", "clean_gap_accuracy", "reported_gap_loss", "reported_gap_accuracy")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nadam", "adagrad", "adadelta", "adamax", "lion")


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
        reestimated: dict or None. Metrics of a copy with re-estimated
            BatchNorm statistics (`reestimation_metrics`), when measured.
        started: float or None. When the run began (seconds since the epoch,
            UTC), when measured.
        seconds: float or None. Wall time from `started` to the trained and
            evaluated model, when measured.
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
    reestimated: dict = None
    started: float = None
    seconds: float = None

    @property
    def variance_shift_max(self):
        """The largest BatchNorm variance shift of the returned weights' epoch, or None without BatchNorm."""
        values = self.history.get("variance_shift_max")
        if not values:
            return None
        best = self.config.get("best_epoch")
        return values[best - 1] if best and best <= len(values) else values[-1]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend, and make TensorFlow ops deterministic.

    On JAX, randomness comes only from the seeded Keras generators, and
    compiled CPU training is deterministic; TensorFlow still runs the
    tf.data input pipeline on every backend, so its op determinism is
    enabled either way (it also makes TensorFlow-backend training
    reproducible).

    Example:

    >>> seed_everything(0)
    """
    keras.utils.set_random_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    tf.config.experimental.enable_op_determinism()


def make_optimizer(optimizer, learning_rate):
    """A Keras optimizer from its name and learning rate, with a clear error for bad names.

    Example:

    >>> type(make_optimizer("sgd", 0.1)).__name__
    'SGD'
    """
    learning_rate = _checks.positive_float(learning_rate, "learning_rate")
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    _checks.one_of(optimizer, OPTIMIZERS, "optimizer")
    return keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": learning_rate}})


def _returned_epoch(callbacks):
    """History index of the weights `train` returns: the restored best epoch, else the last."""
    for callback in callbacks:
        best = getattr(callback, "best_epoch", None)
        if getattr(callback, "restore_best_weights", False) and best is not None:
            return best
    return -1


def _compile(model, optimizer, learning_rate, steps_per_execution):
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )


def _training_data(dataset, batch_size, seed, initial_epoch):
    """The shuffled training batches; pass `initial_epoch + k` of them is epoch `initial_epoch + k`."""
    if keras.backend.backend() == "jax":
        # Keras's JAX trainer pulls tf.data through Python batch by batch, with a new iterator
        # every epoch; numpy batches cut in memory cost a fraction of that. (The batches `fit`
        # reads to build the loss and metrics, it replays: epoch e is still pass e.)
        return dataset.batches("train", batch_size, seed=seed, initial_epoch=initial_epoch)
    return dataset.pipeline("train", batch_size, shuffle=True, seed=seed, initial_epoch=initial_epoch)


def _measuring_callbacks(model, dataset, seed, run_dir, append):
    """The gap callback (which also validates) and, with BatchNorm, the variance-shift monitor."""
    x_train, y_train = dataset.as_numpy("train")
    x_val, y_val = dataset.as_numpy("val")
    log_path = run_dir.path if run_dir else None
    gap = OverfittingGap((x_train, y_train), validation_data=(x_val, y_val), evaluate_validation=True,
                         subset_size=min(len(x_val), len(x_train)), seed=seed, log_path=log_path, append=append)
    measuring = [gap]
    if batch_norm_layers(model):
        measuring.append(VarianceShiftMonitor(x_val[:VARIANCE_SHIFT_BATCH], log_path=log_path, append=append))
    return gap, measuring


def _result(model, dataset, history, gap, user_callbacks, settings, run_dir):
    """The `RunResult`: final metrics through the gap callback's compiled pass (same definitions as the logs)."""
    full_history = run_dir.history() if run_dir else history.history
    full_history.pop("epoch", None)
    final_epoch = _returned_epoch(user_callbacks)
    val_metrics = dict(zip(("loss", "accuracy"), gap.evaluate(*dataset.as_numpy("val"))))
    test_metrics = dict(zip(("loss", "accuracy"), gap.evaluate(*dataset.as_numpy("test"))))
    stop_reason = next((c.stop_reason for c in user_callbacks if getattr(c, "stop_reason", None)), None)
    optimizer = settings["optimizer"]
    config = {
        **(getattr(model, "kerasreg_config", None) or {}),
        "dataset": dataset.name,
        "validation_split": dataset.validation_split,
        "split_seed": dataset.split_seed,
        "standardize": dataset.standardized,
        "source_sha256": getattr(dataset, "source_sha256", None),
        "epochs": settings["epochs"],
        "epochs_run": len(full_history.get("loss", [])),
        # 1-based epoch whose weights are returned (the restored best epoch under early stopping).
        "best_epoch": (final_epoch if final_epoch >= 0 else len(full_history.get("loss", [])) + final_epoch) + 1,
        "batch_size": settings["batch_size"],
        "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__.lower(),
        "learning_rate": settings["learning_rate"],
        "seed": settings["seed"],
        "backend": keras.backend.backend(),
        "cores": _backend.available_cores(),
    }
    return RunResult(
        model=model,
        config=config,
        history=full_history,
        val_metrics={k: float(val_metrics[k]) for k in ("loss", "accuracy")},
        test_metrics={k: float(test_metrics[k]) for k in ("loss", "accuracy")},
        gaps={k: full_history[k][final_epoch] for k in GAP_KEYS},
        epoch_times=full_history.get("epoch_time", []),
        run_dir=run_dir.path if run_dir else None,
        stop_reason=stop_reason,
        clean_subset_indices=gap.subset_indices,
    )


@_backend.with_jax_settings
def train(
    model: keras.Model,
    dataset: Dataset,
    *,
    epochs: int = defaults.EPOCHS,
    batch_size: int = defaults.BATCH_SIZE,
    optimizer: str | keras.optimizers.Optimizer = defaults.OPTIMIZER,
    learning_rate: float = defaults.LEARNING_RATE,
    seed: int = 0,
    run_dir: str | os.PathLike | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    resume: bool = False,
    verbose: int = 1,
    mlflow: str | MlflowRun | None = None,
) -> RunResult:
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
        dataset: `kerasreg.data.Dataset` from `load_dataset` or `Dataset.from_arrays`.
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
        mlflow: str, `kerasreg.tracking.MlflowRun` or None. An MLflow tracking
            URI (or an open run): the run's parameters, every epoch's metrics
            (gaps and variance shift included), the final metrics and, with a
            `run_dir`, its files are logged there. Tracking that fails says so
            on stderr and training goes on. Needs `kerasreg[mlflow]`.
            Defaults to `None`.

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
    _checks.positive_int(epochs, "epochs")
    _checks.positive_int(batch_size, "batch_size")
    if resume and run_dir is None:
        raise ValueError("`resume=True` needs a `run_dir` holding the checkpoint to resume from.")
    make_optimizer(optimizer, learning_rate)
    check_model_and_data(model, dataset)
    warn_unless_probabilities(model, dataset.as_numpy("train")[0][:8])
    seed_everything(seed)

    run_dir = RunDir(run_dir) if run_dir is not None else None
    settings = dict(epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                    learning_rate=learning_rate, seed=seed)
    config = run_config(model, dataset, callbacks=[type(c).__name__ for c in callbacks], **settings)
    initial_epoch = run_dir.start(resume=resume, config=config, callbacks=callbacks) if run_dir else 0

    steps_per_epoch = math.ceil(dataset.sizes["train"] / batch_size)
    # One step call per epoch on TensorFlow, one callback round per epoch on both backends:
    # on small data the Python overhead per step dominates.
    _compile(model, optimizer, learning_rate, steps_per_execution=steps_per_epoch)

    append = initial_epoch > 0
    gap, measuring = _measuring_callbacks(model, dataset, seed, run_dir, append)
    guard = DivergenceGuard()
    all_callbacks = [EpochSeeds(), *measuring, *callbacks, EpochTimer(), guard]
    if verbose:
        all_callbacks.append(EpochProgress(epochs))
    if run_dir:
        all_callbacks += run_dir.callbacks(append=append, resumable=callbacks)
    tracked, owned = _tracking_run(mlflow, model, config, run_dir)
    if tracked is not None:
        from kerasreg.tracking import MlflowCallback

        all_callbacks.insert(all_callbacks.index(guard), MlflowCallback(tracked))  # after the epoch timer
    try:
        # The CSV and TensorBoard logs' failed writes name no file: the run directory is named instead.
        with naming(run_dir.path) if run_dir else contextlib.nullcontext():
            history = model.fit(
                _training_data(dataset, batch_size, seed, initial_epoch),
                # A run killed after early stopping ended it, before it was saved, trains no further epoch.
                epochs=initial_epoch if run_dir and run_dir.stopped else epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps_per_epoch,
                callbacks=all_callbacks,
                shuffle=False,  # the pipeline shuffles, seeded per epoch
                verbose=0,
            )
        if guard.message:
            if run_dir:
                run_dir.write_status("failed", reason=guard.message)
            raise TrainingFailed(guard.message)

        result = _result(model, dataset, history, gap, callbacks, settings, run_dir)
        if run_dir:
            run_dir.finish(model, val_metrics=result.val_metrics, test_metrics=result.test_metrics, gaps=result.gaps)
    except BaseException:
        checkpoint.wait_for_writes()
        if owned:
            tracked.end("FAILED")
        raise
    if tracked is not None:
        _log_result(tracked, owned, result, run_dir)
    return result


def _tracking_run(mlflow, model, config, run_dir):
    """The MLflow run to log into, and whether `train` opened it (and so closes it)."""
    if mlflow is None:
        return None, False
    from kerasreg.tracking import MlflowRun, run_params

    owned = not isinstance(mlflow, MlflowRun)
    name = run_dir.path.name if run_dir else getattr(model, "name", None)
    tracked = MlflowRun(mlflow, run_name=name).start() if owned else mlflow
    recorded = getattr(model, "kerasreg_config", None) or {"model": getattr(model, "name", None)}
    tracked.log_params(run_params({**recorded, **{k: v for k, v in config.items() if k != "model"}}))
    return tracked, owned


def _log_result(tracked, owned, result, run_dir):
    from kerasreg.tracking import final_metrics, log_final

    log_final(tracked, final_metrics(result), result.history)
    if owned:
        if run_dir:
            tracked.log_artifacts(run_dir.path)
        tracked.end()
