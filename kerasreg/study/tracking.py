"""A study in MLflow: one parent run for the study, one child run per exported grid point.

The children are logged from the exports once the report is written, so
executors (a local pool, a Ray cluster) need no tracking of their own and a
resumed study's parent holds every run of the grid, old and new. Each child
has the run's parameters, its per-epoch curves from `history.csv` (gaps and
variance shift included), the manifest's final metrics and the export
folder as artifacts; the parent has the grid and the report files.
"""

import json

from kerasreg.export.layout import HISTORY, MANIFEST
from kerasreg.training import read_history


def log_study(uri, config, out, runs_dir, report):
    """Log a finished study to the MLflow tracking `uri`; returns the parent `MlflowRun`.

    Example:

    >>> log_study("http://127.0.0.1:5000", config, "studies/quick", "studies/quick/runs", report)  # doctest: +SKIP
    """
    from kerasreg.tracking import MlflowRun, log_finished_run, run_params

    with MlflowRun(uri, run_name=f"study {out.name}") as parent:
        parent.log_params({"dataset": config.dataset, "grid": config.describe(), "runs": len(config.runs()),
                           "executor": config.executor, "failures": len(report.failures)})
        for run in config.runs():
            path = runs_dir / run.run_name()
            if not (path / MANIFEST).is_file():
                continue
            manifest = json.loads((path / MANIFEST).read_text())
            history = read_history(path / HISTORY) if (path / HISTORY).is_file() else {}
            log_finished_run(parent, path.name, params=run_params(manifest.get("config") or {}), history=history,
                             metrics=manifest.get("metrics") or {}, folder=path)
        for file in report.files:
            parent.log_artifact(file)
    return parent
