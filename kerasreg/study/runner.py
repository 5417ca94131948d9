"""`run_study`: train every grid point (skipping exported ones), record failures, write the report.

Every run is trained by the trainer and exported by `export_run` into
`<out>/runs/<run-name>/`; all exports are then tabulated by compare from
their manifests (the workers' one test evaluation of each trained model,
which its SavedModel was checked against when exported) and aggregated
over seeds into `report.md` / `report.html` with plots. A run already
exported is skipped, so rerunning the same command (or
`--resume`) continues a killed study; a failed run is recorded in the
report and does not stop the others.

Questions the report answers, from the measured numbers only: which
placement has the smallest clean gap, which the best test accuracy, which
shows the largest BatchNorm variance shift (Li et al., "Understanding the
Disharmony between Dropout and Batch Normalization by Variance Shift", CVPR
2019), and which differences are within seed noise.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time
from typing import TYPE_CHECKING

from kerasreg import _checks
from kerasreg._files import write_atomic
from kerasreg._text import plural
from kerasreg.analysis import report
from kerasreg.export import MANIFEST
from kerasreg.runs import WORK_DIR, prepare
from kerasreg.runs.leftovers import remove_dead_temporaries
from kerasreg.study.artifacts import export_artifacts
from kerasreg.study.executors import make_executor
from kerasreg.study.lock import LOCK, study_lock  # noqa: F401  (LOCK: the lock file's name)
from kerasreg.study.schedule import longest_first

if TYPE_CHECKING:
    from kerasreg.analysis.report import StudyReport
    from kerasreg.study.config import StudyConfig


RUNS_DIR = "runs"
FAILURES = "failures.jsonl"


def _progress(total, initial):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="run", desc="study", file=sys.stderr,
                dynamic_ncols=True, disable=None)


def _outcome_line(outcome, error):
    if error:
        return "failed"
    result = outcome.artifacts.result
    return (f"test accuracy {result.test_metrics['accuracy']:.4f} (best epoch {result.config['best_epoch']} "
            f"of {result.config['epochs_run']})")


def _export_outcomes(outcomes, runs_dir, bar, finished=0):
    """Export each trained run as it arrives (the driver alone writes the study folder); returns failures and tallies."""
    failures, per_node, retried, work = {}, collections.Counter(), 0, 0.0
    for outcome in outcomes:
        per_node[outcome.node] += 1
        work += outcome.seconds
        retried += outcome.attempts > 1
        error = outcome.error
        if error is None:
            try:
                export_artifacts(outcome.artifacts, runs_dir, runs_dir / WORK_DIR / outcome.name)
            except Exception as exc:  # one failed export must not stop the study
                error = f"{type(exc).__name__}: {exc}"
        if error:
            failures[outcome.name] = error
            if bar is not None:
                bar.write(f"run {outcome.name} failed: {error}")
        if bar is not None:
            bar.update(1)
            if bar.disable:  # not a terminal (a log, CI): one line per run instead of a bar
                finished += 1
                print(f"[{finished}/{bar.total}] {outcome.name}: {_outcome_line(outcome, error)}",
                      file=sys.stderr, flush=True)
    return failures, {"runs_per_node": dict(sorted(per_node.items())), "retried": retried, "work_seconds": work}


def run_study(
    config: StudyConfig,
    out: str | os.PathLike,
    *,
    executor: str | None = None,
    address: str | None = None,
    workers: int | None = None,
    resume: bool = False,
    verbose: int = 1,
    mlflow: str | None = None,
) -> StudyReport:
    """Run a study grid, skipping exported runs, then write its report.

    Runs train where the executor says (`config.executor` unless given):
    `"local"` trains in this process or a pool of `workers` spawned
    processes; `"ray"` sends each run as a task to the Ray cluster at
    `address`. Either way the workers return each run's artifacts and this
    process alone exports them into `out/runs/` and writes the report. A
    failed run is recorded in `failures.jsonl` and the report; the others go on.

    Args:
        config: `StudyConfig`. Validated before anything trains.
        out: str or path. The study folder: `runs/` holds the exports,
            `report.md`, `report.html` and PNG plots go next to it.
        executor: str or None. `"local"` or `"ray"`. Defaults to `None`:
            `config.executor`.
        address: str or None. `HOST:PORT` of a Ray head node (ray executor
            only). Defaults to `None`: `config.address`, else `$RAY_ADDRESS`,
            else a Ray instance started on this machine.
        workers: int or None. Local executor only: parallel training
            processes; 1 trains in this process. Defaults to `None`:
            `default_workers()`, one per core up to 4.
        resume: bool. Continue half-trained runs of a killed study from their
            last completed epoch instead of restarting them (local executor).
            Exported runs are skipped either way. Defaults to `False`.
        verbose: int. 1 shows a progress bar over runs. Defaults to `1`.
        mlflow: str or None. An MLflow tracking URI: once the report is
            written, the study is logged there as one parent run with a child
            run per exported grid point (`kerasreg.study.tracking`). Defaults
            to `None`.

    Returns:
        `kerasreg.analysis.report.StudyReport`.

    Raises:
        LockedError: another study is writing `out` (one writer per study
            folder); the message names it (pid, host, start time).

    Example:

    >>> import kerasreg
    >>> config = kerasreg.StudyConfig(placements=["none", "dropout"], seeds=[0], epochs=2)
    >>> report = kerasreg.run_study(config, "studies/tiny")  # doctest: +SKIP
    >>> report = kerasreg.run_study(config, "studies/tiny", executor="ray", address="10.0.0.5:6379")  # doctest: +SKIP
    """
    out = _checks.writable_dir(out, "out")
    with study_lock(out):  # before validating: a second study is refused at once
        runner = make_executor(executor or config.executor, workers=workers, address=address or config.address,
                               backend=config.backend)
        runner.start()  # the workers import while the grid is validated and ordered
        try:
            config.validate()
            study_report = _run_grid(config, out, runner, resume, verbose)
        finally:
            runner.close()
        if mlflow is not None:
            from kerasreg.study.tracking import log_study

            log_study(mlflow, config, out, out / RUNS_DIR, study_report)
        return study_report


def _run_grid(config, out, runner, resume, verbose):
    runs_dir = out / RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(runs_dir, verbose)
    grid = config.runs()
    bar = _progress(len(grid), 0) if verbose else None
    start = time.perf_counter()
    try:
        failures, execution, finished = _train(grid, runs_dir, runner, resume, verbose, bar, 0)
        # Seeds until decided: the planned runs' results say which contrasts get more seeds.
        added = config.added_runs(report.read_rows(out, grid, config.data_dir)[0])
        if added:
            if verbose:
                print(f"Seeds until decided: {plural(len(added), 'run')} added for contrasts still undecided after "
                      "the planned seeds.", file=sys.stderr)
            more_failures, more, _ = _train(added, runs_dir, runner, resume, verbose, bar, finished)
            failures.update(more_failures)
            execution = {key: _merge(execution[key], more[key]) for key in execution}
    finally:
        if bar is not None:
            bar.close()
    execution.update(wall_seconds=time.perf_counter() - start, workers=runner.workers, added=len(added))
    if not execution["work_seconds"]:
        execution.update(_recorded_time(runs_dir))
    if verbose and execution["work_seconds"] and runner.workers:
        print(report.busy_line(execution), file=sys.stderr)
    write_atomic(out / FAILURES, "".join(json.dumps({"run": name, "error": error}) + "\n"
                                         for name, error in sorted(failures.items())))
    execution = {"executor": runner.describe(), **execution}
    return report.write_report(out, config, failures=failures, execution=execution)


def _recorded_time(runs_dir):
    """The study's time read from its manifests, for an invocation that trained nothing (every run was exported).

    Without it, rerunning a finished study to write its report again would report 0 s of work.
    """
    manifests = [json.loads(path.read_text()) for path in sorted(runs_dir.glob(f"*/{MANIFEST}"))]
    try:
        measured = report.study_time(manifests)
    except ValueError:  # no manifests, or some written before kerasreg 0.3 (no recorded times)
        return {}
    return {key: measured[key] for key in ("work_seconds", "workers", "wall_seconds")}


def _merge(first, second):
    if isinstance(first, dict):
        return dict(sorted((collections.Counter(first) + collections.Counter(second)).items()))
    return first + second


def _train(runs, runs_dir, runner, resume, verbose, bar, finished):
    """Train and export the runs not yet exported, longest first; returns `(failures, tallies, runs finished)`."""
    todo = [c for c in runs if not (runs_dir / c.run_name() / MANIFEST).exists()]
    todo = longest_first(todo, lambda c: prepare(c)[1])
    done = len(runs) - len(todo)
    if verbose:
        skipped = f"; skipping {done} already exported" if done else ""
        print(f"Training {plural(len(todo), 'run')} on {runner.describe()}{skipped}.", file=sys.stderr)
    if bar is not None:
        bar.total = finished + len(runs)
        bar.update(done)
        bar.refresh()
    failures, tallies = _export_outcomes(runner.map(todo, runs_dir / WORK_DIR, resume), runs_dir, bar,
                                         finished=finished + done)
    return failures, tallies, finished + len(runs)
