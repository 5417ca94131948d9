"""A search in MLflow: one parent run for the search, one child run per trial.

Logged by the process that owns the search (alone, or the chief) once it has
ended, from the trials' recorded results: workers need no tracking of their
own, and a resumed search's parent holds every trial. A child has the run's
parameters and the trial's hyperparameters (`hp.<name>`), its per-epoch
curves (gaps and variance shift included), its final metrics and score, and,
for the exported best trials, the export folder as artifacts.
"""

import json
import pathlib

from kerasreg.tuning.hypermodel import RESULT_FILE


def log_tune(uri, report, record):
    """Log a finished search (`TuneReport` and its `tune.json` record) to the MLflow tracking `uri`.

    Returns:
        The parent `MlflowRun`.

    Example:

    >>> log_tune("http://127.0.0.1:5000", report, record)  # doctest: +SKIP
    """
    from kerasreg.tracking import MlflowRun, log_finished_run, run_params

    config = record["config"]
    exports = {path.name.split("-", 1)[0]: path for path in report.exports}
    with MlflowRun(uri, run_name=f"tune {report.out.name}") as parent:
        parent.log_params({**{key: config[key] for key in ("model", "dataset", "tuner", "max_trials", "objective",
                                                            "epochs", "seed")},
                           "search_space": json.dumps(record["search_space"], sort_keys=True)})
        scores = [row["score"] for row in report.rows if row["status"] == "COMPLETED"]
        if scores:
            parent.log_metrics({"best_score": scores[0], "trials_completed": len(scores)})
        for row in report.rows:
            path = pathlib.Path(row["run_dir"]) / RESULT_FILE
            if row["status"] != "COMPLETED" or not path.is_file():
                continue
            result = json.loads(path.read_text())
            params = {**run_params(result["config"]), "trial": row["trial"],
                      **{f"hp.{name}": value for name, value in row["hyperparameters"].items()}}
            metrics = {"score": row["score"], "val_accuracy": result["val_metrics"]["accuracy"],
                       "val_loss": result["val_metrics"]["loss"], "test_accuracy": result["test_metrics"]["accuracy"],
                       **result["gaps"], "best_epoch": result["config"].get("best_epoch")}
            log_finished_run(parent, f"trial {row['trial']}", params=params, history=result["history"],
                             metrics=metrics, folder=exports.get(f"trial{row['trial']}"))
        parent.log_artifact(report.out / "summary.md")
        parent.log_artifact(report.out / "tune.json")
    return parent
