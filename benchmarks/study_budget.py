"""How long the study presets take: time a sample of each arm's runs and extrapolate.

Trains a few runs of every arm of a preset exactly as `kerasreg study` does
(`kerasreg.run`, early stopping included, export and BatchNorm
re-estimation included) on the backend this process uses, one at a time,
and prints per arm the median wall and CPU seconds per run, the median
chosen epoch and epochs run, then the extrapolated wall time of the whole
preset with `--workers` parallel processes (runs / workers x median wall,
plus the report's compare pass measured separately by the study itself).
On a shared machine compare CPU seconds, which the load changes less.

With `--study DIR` it trains nothing and reads a finished study's manifests
instead: per architecture the runs, their worker time and epochs, then the
study's own line (`kerasreg.analysis.report.busy_line`): the floor (the runs'
summed training time / workers), the wall time from the first run's start to
the last export, and how busy the workers were.

Run: python benchmarks/study_budget.py [--preset quick | --config study.toml] [--per-arm 2] [--workers 2]
     python benchmarks/study_budget.py --study studies/quick [--workers 2]
"""

import argparse
import json
import pathlib
import statistics
import tempfile
import time

import kerasreg
from kerasreg.analysis import report


def time_run(config, out):
    wall, cpu = time.perf_counter(), time.process_time()
    path = kerasreg.run(config, out=out, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    metrics = json.loads((path / "manifest.json").read_text())["metrics"]
    return wall, cpu, metrics


def read_study(folder, workers):
    manifests = [json.loads(path.read_text()) for path in sorted(pathlib.Path(folder, "runs").glob("*/manifest.json"))]
    if not manifests:
        raise SystemExit(f"No exported runs in {folder}/runs/.")
    by_architecture = {}
    for manifest in manifests:
        by_architecture.setdefault(manifest["model"]["architecture"], []).append(manifest)
    for architecture, members in by_architecture.items():
        measured = report.study_time(members, workers=1)
        epochs = sum(m["metrics"]["epochs_run"] for m in members)
        epoch_seconds = sum(m["metrics"]["epoch_time_total"] or 0.0 for m in members)
        print(f"{architecture}: {len(members)} runs, {measured['work_seconds']:.0f} s of worker time, {epochs} epochs "
              f"at {epoch_seconds / epochs:.3f} s (epochs alone {epoch_seconds:.0f} s)")
    try:
        measured = report.study_time(manifests, workers=workers)
    except ValueError as exc:  # manifests before 0.3 cannot tell how many workers there were
        print(f"{exc} Assuming 2 (--workers).")
        measured = report.study_time(manifests, workers=2)
    if measured["estimated"]:
        print(f"{measured['estimated']} of {measured['runs']} manifests predate the recorded start and worker time "
              "(kerasreg 0.3): those runs count their epochs only, ending at their export, so the work and "
              "the busy fraction are lower bounds.")
    print(report.busy_line(measured))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--config", default=None, help="a study TOML file instead of the preset")
    parser.add_argument("--per-arm", type=int, default=2, help="runs timed per arm (spread over its placements)")
    parser.add_argument("--workers", type=int, default=None,
                        help="parallel workers (default: 2; with --study, the most runs that trained at once)")
    parser.add_argument("--study", default=None, help="a finished study folder: read its manifests, train nothing")
    args = parser.parse_args()
    if args.study:
        return read_study(args.study, args.workers)
    args.workers = args.workers or 2
    config = kerasreg.StudyConfig.preset(args.preset)
    if args.config:
        config = kerasreg.StudyConfig.from_toml(args.config, base=config)
    total = 0.0
    with tempfile.TemporaryDirectory() as out:
        for name, arm in zip(config.arm_names(), config.arm_configs()):
            runs = arm.runs()
            step = max(1, len(runs) // args.per_arm)
            sample = runs[::step][:args.per_arm]
            rows = []
            for run in sample:
                wall, cpu, metrics = time_run(run, out)
                rows.append((wall, cpu, metrics))
                print(f"  {run.run_name()}: {wall:.1f} s wall, {cpu:.1f} s CPU, best epoch "
                      f"{metrics['best_epoch']} of {metrics['epochs_run']}, test {metrics['test_accuracy']:.3f}"
                      + (f" -> {metrics['test_accuracy_reestimated']:.3f} re-estimated"
                         if metrics.get("test_accuracy_reestimated") is not None else ""), flush=True)
            wall = statistics.median(r[0] for r in rows)
            arm_total = wall * len(runs) / args.workers
            total += arm_total
            print(f"{name}: {len(runs)} runs; median {wall:.1f} s wall, "
                  f"{statistics.median(r[1] for r in rows):.1f} s CPU per run; median best epoch "
                  f"{statistics.median(r[2]['best_epoch'] for r in rows):g}, epochs run "
                  f"{statistics.median(r[2]['epochs_run'] for r in rows):g}; "
                  f"about {arm_total / 60:.1f} min with {args.workers} workers", flush=True)
    print(f"{args.config or 'preset ' + args.preset}: about {total / 60:.1f} min of training with {args.workers} workers "
          "(extrapolated from the medians above)")


if __name__ == "__main__":
    main()
