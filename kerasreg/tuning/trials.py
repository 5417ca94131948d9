"""A finished search's trials: their rows for the summary, and the best of them as ordinary kerasreg exports.

Each trial trains in `<tune>/keras_tuner/trial_<id>/run/` (a kerasreg run
directory: `model.keras`, `history.csv`, `gaps.jsonl`, ... and the trial's
`result.json`). The best trials are exported from there with `export_run`,
so `kerasreg compare`, `kerasreg.load` and the report read them like any
other run; the manifest's `config.tuning` records the trial (id, score,
objective, hyperparameters) and the search space.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import keras

from kerasreg.export import export_run, run_name
from kerasreg.export.layout import MANIFEST
from kerasreg.models import factory as _factory  # noqa: F401  (registers kerasreg's Keras classes for load_model)
from kerasreg.training import RunResult
from kerasreg.training.run_dir import MODEL_FILE
from kerasreg.tuning.hypermodel import RESULT_FILE

TRIAL_RUN = "run"
EXPORTS = "exports"
# What each row shows besides the hyperparameters, from the trial's result.json.
ROW_METRICS = ("val_accuracy", "test_accuracy", "clean_gap_accuracy", "reported_gap_accuracy",
               "variance_shift_max", "best_epoch")


def trial_run_dir(tuner, trial_id):
    """The kerasreg run directory of a trial inside KerasTuner's trial folder."""
    return pathlib.Path(tuner.get_trial_dir(trial_id)) / TRIAL_RUN


def _read_result(run_dir):
    path = pathlib.Path(run_dir) / RESULT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def trial_rows(tuner):
    """One dict per trial of the oracle, best score first (trials without a score last).

    Keys: `trial`, `status`, `score`, `hyperparameters` (the active ones),
    the run's `ROW_METRICS` when its files are here, and `run_dir`.

    Example:

    >>> trial_rows(tuner)[0]["score"]  # doctest: +SKIP
    0.6725
    """
    direction = tuner.oracle.objective.direction
    rows = []
    for trial_id, trial in tuner.oracle.trials.items():
        hp = trial.hyperparameters
        values = {name: value for name, value in hp.values.items()
                  if not name.startswith("tuner/") and hp.is_active(name)}
        run_dir = trial_run_dir(tuner, trial_id)
        result = _read_result(run_dir) or {}
        metrics = {"val_accuracy": (result.get("val_metrics") or {}).get("accuracy"),
                   "test_accuracy": (result.get("test_metrics") or {}).get("accuracy"),
                   **(result.get("gaps") or {}),
                   "best_epoch": (result.get("config") or {}).get("best_epoch")}
        history = result.get("history") or {}
        shifts = history.get("variance_shift_max")
        best = metrics["best_epoch"]
        metrics["variance_shift_max"] = shifts[best - 1] if shifts and best else None
        rows.append({"trial": trial_id, "status": str(trial.status), "score": trial.score,
                     "hyperparameters": values, **{k: metrics.get(k) for k in ROW_METRICS},
                     "run_dir": str(run_dir)})
    sign = -1 if direction == "max" else 1
    return sorted(rows, key=lambda r: (r["score"] is None, sign * (r["score"] or 0), r["trial"]))


def export_trial(row, out, tuning):
    """Export one trial's trained run into `out/exports/trial<id>-<run name>`; an existing export of it is kept.

    `tuning` (tuner, objective, search space) goes into the manifest's
    `config.tuning` with the trial's id, score and hyperparameters.

    Raises:
        FileNotFoundError: the trial's files are not in this tune folder
            (a distributed search whose folder is not shared).
    """
    run_dir = pathlib.Path(row["run_dir"])
    result = _read_result(run_dir)
    if result is None or not (run_dir / MODEL_FILE).is_file():
        raise FileNotFoundError(
            f"Trial {row['trial']}'s trained model is not in {run_dir}. In a distributed search the tune "
            "folder must be shared by the chief and the workers (one machine or a network file system).")
    config = {**result["config"], "tuning": {**tuning, "trial_id": row["trial"], "score": row["score"],
                                             "hyperparameters": row["hyperparameters"]}}
    name = f"trial{row['trial']}-{run_name(config)}"
    target = pathlib.Path(out) / EXPORTS / name
    if (target / MANIFEST).is_file():  # exported when this search last finished
        return target
    model = keras.saving.load_model(run_dir / MODEL_FILE, safe_mode=True)
    fields = {f.name for f in dataclasses.fields(RunResult)}
    run = RunResult(model=model, run_dir=run_dir, **{k: v for k, v in result.items() if k in fields and k != "config"},
                    config=config)
    return export_run(run, out=target.parent, name=name)
