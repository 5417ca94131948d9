"""One configured run, end to end: validate, build, train, export.

`run()` checks all of a `RunConfig` before any training, trains in a hidden
work directory under `out` and exports the finished run to `out/<name>/`.
`kerasreg train` and `kerasreg study` both go through `run()`, so a run
configured either way behaves the same.
"""

import glob
import json
import os
import pathlib
import re
import shutil
import sys

from kerasreg import _checks
from kerasreg._locks import Lock
from kerasreg.data import load_dataset
from kerasreg.export import check_export_target, export_run
from kerasreg.models import build_model
from kerasreg.training import make_optimizer, seed_everything, train

WORK_DIR = ".work"


def _work_dir(out, name):
    return pathlib.Path(out) / WORK_DIR / name


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _clean_leftovers(out, name, work_dir, verbose):
    """Remove what a killed writer of this run left: export siblings of dead processes, a finished work dir.

    Called under the run's lock, so no live `run()` of this name is writing them.
    """
    pattern = re.compile(rf"\.{re.escape(name)}\.(tmp|trash)-(\d+)-[0-9a-f]+")
    for sibling in pathlib.Path(out).glob(f".{glob.escape(name)}.*-*"):
        match = pattern.fullmatch(sibling.name)
        if match and not _pid_alive(int(match.group(2))):
            if match.group(1) == "trash" and not (pathlib.Path(out) / name).exists():
                continue  # the replaced export was not yet put back: keep it for the user
            shutil.rmtree(sibling, ignore_errors=True)
    status = work_dir / "status.json"
    if (pathlib.Path(out) / name / "manifest.json").is_file() and status.is_file():
        try:
            finished = json.loads(status.read_text()).get("status") == "completed"
        except ValueError:
            finished = False
        if finished:  # killed after exporting, before removing its work dir
            if verbose:
                print(f"Removing {work_dir}: its run finished and was exported.", file=sys.stderr)
            shutil.rmtree(work_dir)


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
    run that diverges raises `TrainingFailed` and is never exported.

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
    out = _checks.writable_dir(out, "out")
    check_export_target(out, name, overwrite=True)  # a valid name, and `out` a directory
    work_dir = _work_dir(out, name)
    created = [p for p in (out, work_dir.parent) if not p.exists()]
    try:
        with Lock(work_dir.with_name(f"{name}.lock"), f"Run {name!r} in {out}"):
            _clean_leftovers(out, name, work_dir, verbose)
            check_export_target(out, name, overwrite)
            return _train_and_export(config, out, name, work_dir, overwrite=overwrite, resume=resume,
                                     fold_bn=fold_bn, callbacks=callbacks, verbose=verbose)
    finally:
        for folder in (work_dir.parent, *created[:1]):
            try:
                folder.rmdir()  # only succeeds once empty: no other run in progress, nothing exported
            except OSError:
                pass


def _train_and_export(config, out, name, work_dir, *, overwrite, resume, fold_bn, callbacks, verbose):
    dataset, model = prepare(config)
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
    return path
