"""`tune`: search a placement space with a KerasTuner tuner, export the best trials, write a one-page summary.

```
<out>/
  tune.json       the search's configuration and space, written first; a resumed search must match it
  keras_tuner/    KerasTuner's project: oracle state, trial_<id>/ (trial.json, its checkpoint, run/)
  exports/        the best trials as ordinary kerasreg exports (trial<id>-<run name>/)
  summary.md      best trials and mean objective per hyperparameter value
```

A killed search continues with `resume=True`: KerasTuner reloads its
oracle (completed trials stay completed) and sends the trial that was
running back to the queue; that trial continues from kerasreg's checkpoint
of its last completed epoch (`tuning.resumable`) and ends as it would have.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sys
import time
from typing import TYPE_CHECKING

from kerasreg import _checks
from kerasreg._files import write_atomic
from kerasreg._locks import Lock
from kerasreg.data import load_dataset
from kerasreg.training.run_dir import config_differences
from kerasreg.tuning import defaults, distributed
from kerasreg.tuning.trials import export_trial, trial_rows, trial_run_dir

if TYPE_CHECKING:
    from kerasreg.tuning.config import TuneConfig

PROJECT = "keras_tuner"
TUNE_FILE = "tune.json"
SUMMARY = "summary.md"
LOCK = ".lock"


@dataclasses.dataclass
class TuneReport:
    """What a finished search produced.

    Attributes:
        out: pathlib.Path. The tune folder.
        rows: list of dict. One per trial, best first (see `trials.trial_rows`).
        exports: list of pathlib.Path. The best trials' exports, best first.
        summary: str. The Markdown summary (also in `out/summary.md`).
        wall_seconds: float. Time of this call.
    """

    out: pathlib.Path
    rows: list
    exports: list
    summary: str
    wall_seconds: float


def _tuner_class(name):
    import keras_tuner

    base = {"random": keras_tuner.RandomSearch, "bayesian": keras_tuner.BayesianOptimization,
            "hyperband": keras_tuner.Hyperband}[name]

    class TrialRunDirs(base):
        """Gives each trial its kerasreg run directory inside KerasTuner's trial folder."""

        def run_trial(self, trial, *args, **kwargs):
            kwargs["run_dir"] = trial_run_dir(self, trial.trial_id)
            kwargs.pop("verbose", None)  # KerasTuner's display is the progress; no per-epoch lines
            return super().run_trial(trial, *args, **kwargs)

    TrialRunDirs.__name__ = TrialRunDirs.__qualname__ = f"Kerasreg{base.__name__}"
    return TrialRunDirs


def make_tuner(config, hypermodel, objective, directory):
    """The KerasTuner tuner `config.tuner` names, over `hypermodel`, storing its project in `directory`."""
    common = dict(objective=objective, seed=config.seed, directory=str(directory), project_name=PROJECT,
                  overwrite=False)
    cls = _tuner_class(config.tuner)
    if config.tuner == "hyperband":
        return cls(hypermodel, max_epochs=config.epochs, factor=config.factor, **common)
    return cls(hypermodel, max_trials=config.max_trials or defaults.MAX_TRIALS, **common)


def _record(config, space):
    return json.loads(json.dumps({"config": dataclasses.asdict(config), "search_space": space.describe()}))


def _check_folder(out, record, resume):
    """Refuse to start over a search (nothing silently overwritten); a resumed one must have the same settings."""
    path = out / TUNE_FILE
    if not path.exists():
        return
    if not resume:
        raise ValueError(f"{out} already holds a search ({TUNE_FILE}). Continue it with resume=True "
                         "(`--resume`), or choose another output folder.")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"Cannot resume the search in {out}: {TUNE_FILE} is unreadable ({exc}).") from None
    differences = config_differences(saved, record)
    if differences:
        raise ValueError(f"Cannot resume the search in {out}: its settings differ ({'; '.join(differences)}). "
                         "Resume with the original settings, or start a new search in another folder.")


def tune(
    config: TuneConfig,
    out: str | os.PathLike = "tunes/tune",
    *,
    resume: bool = False,
    chief: str | None = None,
    worker: str | None = None,
    tuner_id: str | None = None,
    mlflow: str | None = None,
    verbose: int = 1,
) -> TuneReport | None:
    """Search the placement space of `config`, export the best trials and write the summary.

    Runs in this process, or distributed with KerasTuner's chief/worker mode:
    the chief (`chief="HOST:PORT"`, the address it listens on) holds the
    oracle and, once every trial has ended, exports the best and writes the
    summary; each worker (`worker="HOST:PORT"`, the chief's address) trains
    the trials the chief hands out into the shared `out` folder.

    Args:
        config: `TuneConfig`.
        out: str or path. The tune folder (layout in this module's
            docstring). Defaults to `"tunes/tune"`.
        resume: bool. Continue a killed search in `out`. Defaults to `False`.
        chief: str or None. Serve the search to workers at `HOST:PORT`.
        worker: str or None. Train trials for the chief at `HOST:PORT`; fails
            within seconds when nothing listens there.
        tuner_id: str or None. A worker's KerasTuner id; a worker restarted
            with the same id takes back the trial it was running. Defaults to
            `worker-<host>-<pid>`.
        mlflow: str or None. An MLflow tracking URI: once the search has
            ended, it is logged there as one parent run with a child run per
            trial (`kerasreg.tuning.tracking`). Ignored on a worker.
        verbose: int. 1 shows KerasTuner's per-trial display. Defaults to `1`.

    Returns:
        `TuneReport`, or None on a worker.

    Example:

    >>> import kerasreg
    >>> config = kerasreg.tuning.TuneConfig(placements=["bn_before_act", "bn_act_drop"], max_trials=2, epochs=2)
    >>> report = kerasreg.tuning.tune(config, "tunes/demo", verbose=0)  # doctest: +SKIP
    >>> report.exports[0].name  # doctest: +SKIP
    'trial1-mlp-bn_act_drop-standard0.3-seed0'
    """
    from kerasreg.tuning.hypermodel import PlacementHyperModel, get_objective

    start = time.perf_counter()
    config.validate()
    with distributed.role(chief=chief, worker=worker, tuner_id=tuner_id):
        if worker is not None:
            distributed.wait_for_chief(worker)
        if chief is not None:
            distributed.check_can_listen(chief)
        objective = get_objective(config.objective)
        dataset = load_dataset(config.dataset, data_dir=config.data_dir, validation_split=config.validation_split,
                               seed=config.seed)
        hypermodel = PlacementHyperModel(config.model, input_shape=dataset.input_shape,
                                         num_classes=dataset.num_classes, seed=config.seed, **config.space_kwargs())
        out = _checks.writable_dir(out, "out")
        search = dict(epochs=config.epochs, batch_size=config.batch_size, optimizer=config.optimizer,
                      learning_rate=config.learning_rate, verbose=verbose)
        if worker is not None:
            out.mkdir(parents=True, exist_ok=True)
            make_tuner(config, hypermodel, objective, out).search(dataset, **search)
            return None
        if resume and not (out / TUNE_FILE).is_file():  # checked before the folder is made: nothing left behind
            raise ValueError(f"Cannot resume a search in {out}: it holds no search ({TUNE_FILE} is missing). "
                             "Pass the folder of an earlier search, or start a new one without resume (`--resume`).")
        record = _record(config, hypermodel.space)
        out.mkdir(parents=True, exist_ok=True)
        with Lock(out / LOCK, f"Search {str(out)!r}", advice="Wait for it to finish, or give this search another --out."):
            _check_folder(out, record, resume)
            write_atomic(out / TUNE_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")
            tuner = make_tuner(config, hypermodel, objective, out)
            if chief is not None:
                if verbose:
                    print(f"Serving the search at {chief}; start workers with "
                          f"`kerasreg tune --worker {chief} ...` (same settings, same folder).", file=sys.stderr)
                tuner.oracle.verbose = verbose
                tuner.save()
                distributed.serve(tuner.oracle, chief)
            else:
                tuner.search(dataset, **search)
            return _finish(config, tuner, objective, out, record, start, mlflow)


def _finish(config, tuner, objective, out, record, start, mlflow):
    from kerasreg.tuning.summary import format_summary

    rows = trial_rows(tuner)
    tuning = {"tuner": config.tuner, "objective": {"name": objective.name, "direction": objective.direction},
              "search_space": record["search_space"]}
    completed = [r for r in rows if r["status"] == "COMPLETED"]
    exports = [export_trial(row, out, tuning) for row in completed[:config.best]]
    wall = time.perf_counter() - start
    text = format_summary(rows, config=config, objective=objective, exports=exports, wall_seconds=wall)
    write_atomic(out / SUMMARY, text)
    report = TuneReport(out=out, rows=rows, exports=exports, summary=text, wall_seconds=wall)
    if mlflow is not None:
        from kerasreg.tuning.tracking import log_tune

        log_tune(mlflow, report, record)
    return report

