"""One configured run, end to end: validate, build, train, export.

`run()` checks all of a `RunConfig` before any training, trains in a hidden
work directory under `out` and exports the finished run to `out/<name>/`.
`kerasreg train` and `kerasreg study` both go through `run()`, so a run
configured either way behaves the same. A run whose `backend` is not this
process's trains in a subprocess of that backend (`runs.other_backend`).
"""

import pathlib
import shutil
import sys

from kerasreg import _backend, _checks
from kerasreg.data import load_dataset
from kerasreg.export import check_export_target, export_run
from kerasreg.models import build_model
from kerasreg.training import make_optimizer, seed_everything, train

WORK_DIR = ".work"


def _work_dir(out, name):
    return pathlib.Path(out) / WORK_DIR / name


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
    dataset = load_dataset(config.dataset, data_dir=config.data_dir,
                           validation_split=config.validation_split, seed=config.seed)
    seed_everything(config.seed)
    model = build_model(
        config.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes,
        seed=config.seed, **config.model_kwargs(),
    )
    return dataset, model


def run(config, *, out="saved_models", overwrite=False, resume=False, fold_bn=False, callbacks=(), verbose=1):
    """Validate, train and export one run; returns the export path.

    Everything is checked before training starts: names, rates, shapes,
    the dataset, and that `out/<name>` does not exist yet (unless
    `overwrite`). Training happens in `out/.work/<name>/`; only a finished
    run is exported, atomically, and the work directory is then removed. A
    run that diverges raises `TrainingFailed` and is never exported. With
    `config.backend` other than this process's backend, the run trains in a
    subprocess on that backend (then `callbacks` must be empty).

    Args:
        config: `RunConfig`.
        out: str or path. Export directory. Defaults to `"saved_models"`.
        overwrite: bool. Replace an existing export of the same name. Defaults to `False`.
        resume: bool. Continue a killed run from its last completed epoch. Defaults to `False`.
        fold_bn: bool. Also export a BatchNorm-folded SavedModel. Defaults to `False`.
        callbacks: extra Keras callbacks for `train`. Defaults to `()`.
        verbose: int. 1 prints one line per epoch. Defaults to `1`.

    Returns:
        pathlib.Path of the export.

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
        from kerasreg.runs.other_backend import run_elsewhere

        return run_elsewhere(config, backend, out=out, overwrite=overwrite, resume=resume,
                             fold_bn=fold_bn, verbose=verbose)
    check_export_target(out, name, overwrite)
    dataset, model = prepare(config)
    work_dir = _work_dir(out, name)
    if work_dir.exists() and not resume:
        if verbose:
            print(f"Discarding the unfinished run in {work_dir} (use --resume to continue it).",
                  file=sys.stderr)
        shutil.rmtree(work_dir)
    result = train(
        model, dataset, epochs=config.epochs, batch_size=config.batch_size,
        optimizer=config.optimizer, learning_rate=config.learning_rate, seed=config.seed,
        run_dir=work_dir, callbacks=callbacks, resume=resume, verbose=verbose,
    )
    path = export_run(result, out=out, name=name, overwrite=overwrite, fold_bn=fold_bn)
    shutil.rmtree(work_dir)
    try:
        work_dir.parent.rmdir()  # only succeeds once no other run is in progress
    except OSError:
        pass
    return path
