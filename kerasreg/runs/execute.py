"""One configured run, end to end: validate, build, train, export.

`run()` checks all of a `RunConfig` before any training, trains in a hidden
work directory under `out` and exports the finished run to `out/<name>/`.
`kerasreg train` and `kerasreg study` both go through `run()`, so a run
configured either way behaves the same. A run whose `backend` is not this
process's trains in a worker process of that backend (`kerasreg._processes.call_on`),
which raises its errors here with their types.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import time
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import keras

from kerasreg import _backend, _checks, _processes
from kerasreg._locks import Lock
from kerasreg.data import load_dataset
from kerasreg.export import check_export_target, export_run
from kerasreg.models import build_model
from kerasreg.runs.leftovers import clean_leftovers
from kerasreg.training import make_optimizer, reestimate_batch_norm, reestimation_metrics, seed_everything, train
from kerasreg.training.early_stopping import ResumableEarlyStopping

if TYPE_CHECKING:
    from kerasreg.runs.config import RunConfig
    from kerasreg.tracking import MlflowRun
    from kerasreg.training import RunResult


WORK_DIR = ".work"
REESTIMATED_SUFFIX = "-bn_reestimated"


def _work_dir(out, name):
    return pathlib.Path(out) / WORK_DIR / name


def _dataset(config):
    return load_dataset(config.dataset, data_dir=config.data_dir,
                        validation_split=config.validation_split, seed=config.seed)


def prepare(config):
    """Validate a config by loading its data and building its model; nothing is trained.

    Returns:
        `(dataset, model)`.

    Example:

    >>> dataset, model = prepare(RunConfig(epochs=1))  # doctest: +SKIP
    """
    make_optimizer(config.optimizer, config.learning_rate)
    for name in ("epochs", "batch_size"):
        _checks.positive_int(getattr(config, name), name)
    if config.patience is not None:
        _checks.positive_int(config.patience, "patience")
    dataset = _dataset(config)
    seed_everything(config.seed)
    try:
        model = build_model(
            config.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes,
            seed=config.seed, **config.model_kwargs(),
        )
    except ValueError as error:
        if "`input_shape`" not in str(error):
            raise
        raise ValueError(
            f"{error} (the input shape of dataset {config.dataset!r}: {dataset.input_shape}; `mlp` takes any shape)"
        ) from None
    return dataset, model


def train_in(
    config: RunConfig,
    work_dir: str | os.PathLike,
    *,
    resume: bool = False,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 1,
    mlflow: str | MlflowRun | None = None,
) -> RunResult:
    """Validate, build and train one run in `work_dir`; nothing is exported.

    A leftover `work_dir` of a killed run is continued with `resume=True`
    and discarded otherwise. On success the directory holds the trained
    `model.keras`, `status.json` and the logs (see `kerasreg.training.run_dir`).
    With `config.patience`, training stops once validation loss has not
    improved for that many epochs and keeps the best epoch's weights. With
    BatchNormalization, a copy of the trained model with its BN statistics
    re-estimated (`reestimate_batch_norm`) is evaluated too, into
    `result.reestimated`; the trained model is left as it is.

    Args:
        config: `RunConfig`.
        work_dir: str or path. The run directory.
        resume: bool. Continue from the last completed epoch. Defaults to `False`.
        callbacks: extra Keras callbacks for `train`. Defaults to `()`.
        verbose: int. 1 prints one line per epoch. Defaults to `1`.
        mlflow: str, `kerasreg.tracking.MlflowRun` or None. Where `train` logs
            the run (see `kerasreg.train`). Defaults to `None`.

    Returns:
        `kerasreg.training.RunResult`.

    Example:

    >>> result = train_in(RunConfig(epochs=2), "/tmp/kerasreg_doc_work")  # doctest: +SKIP
    """
    started, start = time.time(), time.perf_counter()
    dataset, model = prepare(config)
    work_dir = pathlib.Path(work_dir)
    if work_dir.exists() and not resume:
        if verbose:
            print(f"Discarding the unfinished run in {work_dir} (use --resume to continue it).",
                  file=sys.stderr)
        shutil.rmtree(work_dir)
    if config.patience is not None:
        # Watching starts after `patience` epochs: in inference mode, a net with dropout feeding
        # BatchNorm can have its best validation loss in epoch 1 and a worse one for many epochs
        # after, and would stop there at chance level, long before it learns.
        callbacks = (*callbacks, ResumableEarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True,
            start_from_epoch=config.patience))
    result = train(
        model, dataset, epochs=config.epochs, batch_size=config.batch_size,
        optimizer=config.optimizer, learning_rate=config.learning_rate, seed=config.seed,
        run_dir=work_dir, callbacks=callbacks, resume=resume, verbose=verbose, mlflow=mlflow,
    )
    reestimated = reestimation_metrics(result.model, dataset) or None
    return dataclasses.replace(result, reestimated=reestimated, started=started, seconds=time.perf_counter() - start)


def run(
    config: RunConfig,
    *,
    out: str | os.PathLike = "saved_models",
    overwrite: bool = False,
    resume: bool = False,
    fold_bn: bool = False,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 1,
    export_reestimated: bool = False,
    mlflow: str | None = None,
) -> pathlib.Path:
    """Validate, train and export one run; returns the export path.

    Everything is checked before training starts: names, rates, shapes,
    the dataset, and that `out/<name>` does not exist yet (unless
    `overwrite`). Training happens in `out/.work/<name>/`; only a finished
    run is exported, atomically, and the work directory is then removed. A
    run that diverges raises `TrainingFailed` and is never exported. With
    `config.backend` other than this process's backend, the run trains in a
    subprocess on that backend (then `callbacks` must be empty).

    With BatchNormalization, a copy of the trained model with its BN
    statistics re-estimated (`reestimate_batch_norm`) is evaluated too; its
    test accuracy and variance shift go into the manifest's metrics. The
    export is always the trained model.

    One writer per run: the run holds `out/.work/<name>.lock` from before it
    touches anything until it returns; a second `run()` of the same name
    raises `LockedError` naming the holder (pid, host, start time). A lock
    left by a killed process is taken over. Under the lock, what a killed
    run of this name left behind is cleaned: hidden `.<name>.tmp-*` export
    siblings of dead processes, and a work directory whose run was exported.

    Args:
        config: `RunConfig`.
        out: str or path. Export directory. Defaults to `"saved_models"`.
        overwrite: bool. Replace an existing export of the same name. Defaults to `False`.
        resume: bool. Continue a killed run from its last completed epoch. Defaults to `False`.
        fold_bn: bool. Also export a BatchNorm-folded SavedModel. Defaults to `False`.
        callbacks: extra Keras callbacks for `train`. Defaults to `()`.
        verbose: int. 1 prints one line per epoch. Defaults to `1`.
        export_reestimated: bool. Also export the re-estimated copy to
            `out/<name>-bn_reestimated`. Defaults to `False`.
        mlflow: str or None. An MLflow tracking URI: the run is logged there
            as it trains (parameters, per-epoch metrics with the gaps and the
            variance shift, final metrics) and its export folder is uploaded
            as the run's artifacts. If tracking fails, the run says so and
            still trains and exports. Defaults to `None`.

    Returns:
        pathlib.Path of the export.

    Raises:
        LockedError: another process is running this name into `out`.
        ResumeMismatchError: `resume` with a configuration other than the
            one the run started with; the message names every difference.

    Example:

    >>> path = run(RunConfig(epochs=2), out="/tmp/exports")  # doctest: +SKIP
    """
    name = config.run_name()
    backend = _backend.check_backend(config.backend or _backend.backend())
    if backend != _backend.backend():
        if callbacks:
            raise ValueError(
                f"Callbacks cannot be passed to a run on backend {backend!r} from a "
                f"{_backend.backend()!r} process (it trains in a subprocess). Run it with "
                f"KERAS_BACKEND={backend} or leave `backend` unset.")
        return _processes.call_on(backend, run, config, out=out, overwrite=overwrite, resume=resume,
                                  fold_bn=fold_bn, verbose=verbose, export_reestimated=export_reestimated)
    out = _checks.writable_dir(out, "out")
    check_export_target(out, name, overwrite=True)  # a valid name, and `out` a directory
    work_dir = _work_dir(out, name)
    created = [p for p in (out, work_dir.parent) if not p.exists()]
    try:
        with Lock(work_dir.with_name(f"{name}.lock"), f"Run {name!r} in {out}",
                  advice="Wait for it to finish, or give this run another --name or --out."):
            clean_leftovers(out, name, work_dir, verbose)
            check_export_target(out, name, overwrite)
            if export_reestimated:
                check_export_target(out, name + REESTIMATED_SUFFIX, overwrite)
            return _train_and_export(config, out, name, work_dir, overwrite=overwrite, resume=resume,
                                     fold_bn=fold_bn, callbacks=callbacks, verbose=verbose,
                                     export_reestimated=export_reestimated, mlflow=mlflow)
    finally:
        for folder in (work_dir.parent, *created[:1]):
            try:
                folder.rmdir()  # only succeeds once empty: no other run in progress, nothing exported
            except OSError:
                pass


def _train_and_export(config, out, name, work_dir, *, overwrite, resume, fold_bn, callbacks, verbose,
                      export_reestimated, mlflow):
    tracked = None
    if mlflow is not None:
        from kerasreg.tracking import MlflowRun

        tracked = MlflowRun(mlflow, run_name=name).start()
    try:
        path = _train_and_export_tracked(config, out, name, work_dir, overwrite=overwrite, resume=resume,
                                         fold_bn=fold_bn, callbacks=callbacks, verbose=verbose,
                                         export_reestimated=export_reestimated, tracked=tracked)
    except BaseException:
        if tracked is not None:
            tracked.end("FAILED")
        raise
    if tracked is not None:
        tracked.log_artifacts(path)
        tracked.end()
    return path


def _train_and_export_tracked(config, out, name, work_dir, *, overwrite, resume, fold_bn, callbacks, verbose,
                              export_reestimated, tracked):
    result = train_in(config, work_dir, resume=resume, callbacks=callbacks, verbose=verbose, mlflow=tracked)
    if tracked is not None and result.reestimated:
        from kerasreg.tracking import log_final

        log_final(tracked, result.reestimated, result.history)
    path = export_run(result, out=out, name=name, overwrite=overwrite, fold_bn=fold_bn)
    if export_reestimated and result.reestimated:
        fixed = reestimate_batch_norm(result.model, _dataset(config))
        # Only the test accuracy was measured on the copy; the trained model's other numbers would mislead.
        test = {"accuracy": result.reestimated["test_accuracy_reestimated"], "loss": None}
        export_run(dataclasses.replace(result, model=fixed, test_metrics=test, reestimated=None,
                                       val_metrics={"accuracy": None, "loss": None}),
                   out=out, name=name + REESTIMATED_SUFFIX, overwrite=overwrite, fold_bn=fold_bn)
    shutil.rmtree(work_dir)
    return path
