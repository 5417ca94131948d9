"""`run_study`: train every grid point (skipping exported ones), record failures, write the report.

Every run is trained by the trainer and exported by `export_run` into
`<out>/runs/<run-name>/`; all exports are then re-evaluated by compare and
aggregated over seeds into `report.md` / `report.html` with plots. A run
already exported is skipped, so rerunning the same command (or
`--resume`) continues a killed study; a failed run is recorded in the
report and does not stop the others.

Questions the report answers, from the measured numbers only: which
placement has the smallest clean gap, which the best test accuracy, which
shows the largest BatchNorm variance shift (Li et al., "Understanding the
Disharmony between Dropout and Batch Normalization by Variance Shift", CVPR
2019), and which differences are within seed noise.
"""

import json
import pathlib
import sys

from kerasreg import _checks
from kerasreg.analysis import report
from kerasreg.export import MANIFEST
from kerasreg.study.executors import default_workers, execute

RUNS_DIR = "runs"
FAILURES = "failures.jsonl"


def _progress(total, initial):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="run", desc="study", file=sys.stderr,
                dynamic_ncols=True, disable=None)


def run_study(config, out, *, workers=None, resume=False, verbose=1):
    """Run a study grid, skipping exported runs, then write its report.

    With `workers > 1` runs train in separate spawned processes, each with
    TensorFlow limited to `max(1, cpu_count // workers)` threads. A failed run is recorded in
    `failures.jsonl` and the report; the others go on.

    Args:
        config: `StudyConfig`. Validated before anything trains.
        out: str or path. The study folder: `runs/` holds the exports,
            `report.md`, `report.html` and PNG plots go next to it.
        workers: int or None. Parallel training processes; 1 trains in this
            process. Defaults to `None`: `default_workers()`, one per core
            up to 4 (most of a small run is single-threaded graph tracing,
            so processes scale better than threads).
        resume: bool. Continue half-trained runs of a killed study from their
            last completed epoch instead of restarting them. Exported runs
            are skipped either way. Defaults to `False`.
        verbose: int. 1 shows a progress bar over runs. Defaults to `1`.

    Returns:
        `kerasreg.report.StudyReport`.

    Example:

    >>> import kerasreg
    >>> config = kerasreg.StudyConfig(placements=["none", "dropout"], seeds=[0], epochs=2)
    >>> report = kerasreg.run_study(config, "studies/tiny")  # doctest: +SKIP
    """
    workers = default_workers() if workers is None else workers
    _checks.positive_int(workers, "workers")
    config.validate()
    out = pathlib.Path(out)
    runs_dir = out / RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    grid = config.runs()
    todo = [c for c in grid if not (runs_dir / c.run_name() / MANIFEST).exists()]
    if verbose and len(todo) < len(grid):
        print(f"Skipping {len(grid) - len(todo)} run(s) already exported in {runs_dir}.", file=sys.stderr)

    failures = {}
    bar = _progress(len(grid), len(grid) - len(todo)) if verbose else None
    for name, error in execute(todo, runs_dir, resume, workers, backend=config.backend):
        if error:
            failures[name] = error
            if bar is not None:
                bar.write(f"run {name} failed: {error}")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    with open(out / FAILURES, "w") as f:
        for name, error in sorted(failures.items()):
            f.write(json.dumps({"run": name, "error": error}) + "\n")
    return report.write_report(out, config, failures=failures)
