"""The `kerasreg` command: argument parsing only; the work is in the public API."""

import argparse
import contextlib
import dataclasses
import os
import pathlib
import signal
import sys
import threading

from kerasreg import _processes, _quiet
from kerasreg._version import __version__
from kerasreg.data.defaults import VALIDATION_SPLIT
from kerasreg.training import defaults


def _shape(text):
    """Parse `40` or `28,28,1` into a tuple of ints."""
    try:
        return tuple(int(d) for d in text.replace("x", ",").split(",") if d)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"Expected comma-separated ints such as 40 or 28,28,1. Received: {text!r}"
        ) from None


def _first_doc_line(obj):
    return ((obj.__doc__ or "").strip().splitlines() or [""])[0]


def cmd_list(args):
    import kerasreg
    from kerasreg.models import get_dropout_kind, get_model_fn, get_norm_kind

    print("Models:")
    for name in kerasreg.list_models():
        print(f"  {name:<16} {_first_doc_line(get_model_fn(name))}")
    print("\nPlacements:")
    for name in kerasreg.list_placements():
        p = kerasreg.get_placement(name)
        print(f"  {name:<16} {p.block_text():<48} {p.description}")
    print("\nDropout kinds:")
    for name in kerasreg.list_dropout_kinds():
        print(f"  {name:<16} {_first_doc_line(get_dropout_kind(name))}")
    print("\nNorm kinds:")
    for name in kerasreg.list_norm_kinds():
        print(f"  {name:<16} {_first_doc_line(get_norm_kind(name))}")
    return 0


def add_model_flags(parser):
    """Flags for every `build_model` option and architecture option, shared by `build`, `train` and `study`."""
    from kerasreg.models.options import BUILD_OPTIONS, architecture_help, architecture_options

    for option in BUILD_OPTIONS:
        default = "" if option.default is None else f" (default {option.default})"
        parser.add_argument(option.flag, type=option.type, default=None, help=option.help + default)
    for name, defaults in architecture_options().items():
        # Text, parsed once the model is known: `--filters 4` is 4 for one model and (4,) for another.
        parser.add_argument("--" + name.replace("_", "-"), default=None, metavar="VALUE",
                            help=architecture_help(name, defaults))


def model_kwargs(args):
    """`build_model` keyword arguments given on the command line (unset ones left out, text not yet parsed)."""
    from kerasreg.models.options import BUILD_OPTIONS, architecture_options

    names = [o.name for o in BUILD_OPTIONS] + list(architecture_options())
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def cmd_build(args):
    import kerasreg

    from kerasreg.models.options import architecture_kwargs

    model = kerasreg.build_model(
        args.model, input_shape=args.input_shape, num_classes=args.num_classes,
        seed=args.seed, **architecture_kwargs(args.model, model_kwargs(args)),
    )
    model.summary()
    print(kerasreg.describe(model))
    return 0


def cmd_data_list(args):
    from kerasreg import data

    print(data.format_dataset_list(data.list_datasets(data_dir=args.data_dir), data_dir=args.data_dir))
    return 0


def cmd_data_info(args):
    from kerasreg import data

    print(data.dataset_info(args.name, data_dir=args.data_dir))
    if args.source:
        data.load_dataset(args.name, data_dir=args.data_dir, source=args.source)
        print(f"  source {args.source}: unchanged since import")
    return 0


def cmd_data_import(args):
    from kerasreg import data

    imported = data.import_dataset(
        args.name, args.source, label=args.label, image_size=args.image_size, test_split=args.test_split,
        seed=args.seed, data_dir=args.data_dir, overwrite=args.overwrite)
    sizes = ", ".join(f"{count} {split}" for split, count in imported.sizes.items())
    print(f"Imported {imported.name!r} ({sizes}; input {imported.input_shape}, "
          f"{len(imported.class_names)} classes) to {imported.path}")
    return 0


def cmd_train(args):
    from kerasreg import runs

    flags = {
        "model": args.model, "dataset": args.dataset, "data_dir": args.data_dir,
        "validation_split": args.validation_split, "epochs": args.epochs,
        "batch_size": args.batch_size, "optimizer": args.optimizer,
        "learning_rate": args.learning_rate, "seed": args.seed, "name": args.name,
        "patience": args.patience, "backend": args.backend, **model_kwargs(args),
    }
    if args.config:
        config = runs.RunConfig.from_toml(args.config, **flags)
    else:
        config = runs.RunConfig.from_dict({k: v for k, v in flags.items() if v is not None})
    if args.rebuild_data:
        from kerasreg.data import rebuild_dataset

        rebuild_dataset(config.dataset, data_dir=config.data_dir)
    path = runs.run(config, out=args.out, overwrite=args.overwrite, resume=args.resume,
                    fold_bn=args.fold_bn, verbose=0 if args.quiet else 1,
                    export_reestimated=args.export_reestimated, mlflow=args.mlflow)
    print(f"Exported {path}")
    return 0


def cmd_compare(args):
    import kerasreg
    from kerasreg.analysis import compare

    comparison = kerasreg.compare_exports(args.paths, sort=args.sort, data_dir=args.data_dir,
                                          skip_invalid=args.skip_invalid)
    skipped = [str(path) for path in comparison.skipped if path.is_dir()]
    if skipped:
        print(f"skipped (no export inside): {', '.join(skipped)}", file=sys.stderr)
    for path, reason in comparison.invalid:
        print(f"skipped (failed verification): {path}: {reason}", file=sys.stderr)
    print(comparison.format_table())
    out = args.out or compare.default_output_dir(args.paths)
    written = comparison.write(out, plots=not args.no_plots)
    print(f"\nWrote {len(written)} files to {out}: {', '.join(p.name for p in written)}")
    return 0


def cmd_study(args):
    from kerasreg import _checks
    from kerasreg.study.lock import study_lock

    out = args.out or f"studies/{args.preset if not args.config else pathlib.Path(args.config).stem}"
    out = _checks.writable_dir(out, "out")
    with study_lock(out):  # before the imports: a second study into `out` is refused at once
        return _study(args, out)


def _study(args, out):
    from kerasreg.study import workers

    if not args.config and args.executor != "ray" and (args.workers is None or args.workers > 1):
        # A preset's workers, started before this process imports the training code: they import it meanwhile.
        workers.start_early(args.workers, args.backend)
    try:
        return _run_study(args, out)
    finally:
        workers.stop_early()


def _run_study(args, out):
    from kerasreg import study

    config = study.StudyConfig.preset(args.preset)
    if args.config:  # with --rebuild-data, run_study validates it after the rebuild
        config = study.StudyConfig.from_toml(args.config, base=config, validate=not args.rebuild_data)
    if args.backend is not None:
        config = dataclasses.replace(config, backend=args.backend)
    if args.rebuild_data:
        from kerasreg.data import rebuild_dataset

        rebuild_dataset(config.dataset, data_dir=config.data_dir)
    report = study.run_study(config, out, executor=args.executor, address=args.address,
                             workers=args.workers, resume=args.resume,
                             verbose=0 if args.quiet else 1, mlflow=args.mlflow)
    print("\n".join(report.answer))
    print(f"Report: {report.files[0]} (and report.html beside it)")
    return 1 if report.failures else 0


def cmd_tune(args):
    from kerasreg import tuning
    from kerasreg.tuning.runner import SUMMARY
    from kerasreg.tuning.trials import EXPORTS

    flags = {"model": args.model, "dataset": args.dataset, "data_dir": args.data_dir, "epochs": args.epochs,
             "tuner": args.tuner, "max_trials": args.max_trials, "objective": args.objective, "best": args.best,
             "seed": args.seed, "placements": args.placements.split(",") if args.placements else None}
    if args.config:
        config = tuning.TuneConfig.from_toml(args.config, **flags)
    else:
        config = tuning.TuneConfig.from_dict({k: v for k, v in flags.items() if v is not None})
    out = args.out or f"tunes/{pathlib.Path(args.config).stem if args.config else config.model}"
    report = tuning.tune(config, out, resume=args.resume, chief=args.chief, worker=args.worker,
                         tuner_id=args.tuner_id, mlflow=args.mlflow, verbose=0 if args.quiet else 1)
    if report is not None:
        print(report.summary)
        print(f"Summary: {report.out / SUMMARY}; exports in {report.out / EXPORTS}")
    return 0


def cmd_diagnose(args):
    import kerasreg
    from kerasreg.diagnosis import load_model_file, render

    if args.out:
        render.check_target(args.out, overwrite=args.overwrite)  # before minutes of measuring, not after
    model, manifest = load_model_file(args.model, safe_mode=not args.unsafe_load)
    dataset = args.dataset or ((manifest or {}).get("dataset") or {}).get("name")
    if dataset is None:
        raise ValueError("Pass the data to diagnose on with --dataset NAME (see `kerasreg data list`).")
    result = kerasreg.diagnose(model, dataset, test=args.test, mc_samples=args.mc_samples, batch_size=args.batch_size,
                               seed=args.seed, data_dir=args.data_dir, manifest=manifest)
    print(result.format())
    if args.out:
        written = result.write(args.out, overwrite=args.overwrite)
        print(f"\nWrote {', '.join(str(path) for path in written)}")
    return 0


MLFLOW_HELP = "log to this MLflow tracking URI, e.g. http://127.0.0.1:5000 (needs kerasreg[mlflow])"


def make_parser():
    """The argument parser of the `kerasreg` command.

    Example:

    >>> make_parser().parse_args(["list"]).command
    'list'
    """
    parser = argparse.ArgumentParser(
        prog="kerasreg",
        description="Where should Dropout and BatchNormalization go? Build, train, export and compare.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show TensorFlow's start-up log lines and the full traceback of an error "
                             "(accepted anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list models, placements, dropout kinds and norm kinds")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("build", help="build a model and print its summary")
    p.add_argument("model", help="architecture name (see `kerasreg list`)")
    p.add_argument("--input-shape", type=_shape, required=True, help="e.g. 40 or 8,8,1")
    p.add_argument("--num-classes", type=int, required=True)
    p.add_argument("--seed", type=int, default=None)
    add_model_flags(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("data", help="list datasets, describe one, or import your own")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    q = data_sub.add_parser("list", help="built-in datasets and TFDS datasets prepared in the data directory")
    q.add_argument("--data-dir", default=None, help="default $KERASREG_DATA_DIR or ~/tensorflow_datasets")
    q.set_defaults(func=cmd_data_list)
    q = data_sub.add_parser("info", help="describe one dataset (nothing is downloaded)")
    q.add_argument("name")
    q.add_argument("--data-dir", default=None, help="default $KERASREG_DATA_DIR or ~/tensorflow_datasets")
    q.add_argument("--source", default=None, help="an imported dataset's source: check it is unchanged (sha256)")
    q.set_defaults(func=cmd_data_info)
    q = data_sub.add_parser("import", help="import an .npz, a CSV file or an image folder as a TFDS dataset")
    q.add_argument("name", help="dataset name for --dataset and study files (lowercase, digits, _)")
    q.add_argument("source", help="x.npz, table.csv, or a folder of <class>/ image folders")
    q.add_argument("--label", default=None, help="CSV label column (default: the column named label)")
    q.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="resize images to H x W (default: the first image's size)")
    q.add_argument("--test-split", type=float, default=0.2,
                   help="fraction held out as test when the source has no test part (default 0.2)")
    q.add_argument("--seed", type=int, default=0, help="seed choosing the test examples (default 0)")
    q.add_argument("--data-dir", default=None, help="default $KERASREG_DATA_DIR or ~/tensorflow_datasets")
    q.add_argument("--overwrite", action="store_true", help="replace an earlier import of the same name")
    q.set_defaults(func=cmd_data_import)

    p = sub.add_parser("train", help="train one configuration and export it")
    p.add_argument("--model", default=None, help="architecture (default mlp)")
    add_model_flags(p)
    p.add_argument("--dataset", default=None, help="dataset name (default mnist1d)")
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default $KERASREG_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--validation-split", type=float, default=None,
                   help=f"fraction of train held out (default {VALIDATION_SPLIT})")
    p.add_argument("--epochs", type=int, default=None, help=f"default {defaults.EPOCHS}")
    p.add_argument("--patience", type=int, default=None,
                   help="stop once validation loss has not improved for this many epochs (watched from epoch "
                        "patience + 1 on), keeping the best epoch (default: train all epochs)")
    p.add_argument("--batch-size", type=int, default=None, help=f"default {defaults.BATCH_SIZE}")
    p.add_argument("--optimizer", default=None, help=f"default {defaults.OPTIMIZER}")
    p.add_argument("--learning-rate", type=float, default=None, help=f"default {defaults.LEARNING_RATE:g}")
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument("--out", default="saved_models", help="export directory (default saved_models)")
    p.add_argument("--name", default=None, help="run name (default derived from the configuration)")
    p.add_argument("--config", default=None, help="TOML file with the same keys as the flags (flags override it)")
    p.add_argument("--resume", action="store_true", help="continue a killed run from its last completed epoch")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export of the same name")
    p.add_argument("--fold-bn", action="store_true", help="also export a BatchNorm-folded SavedModel")
    p.add_argument("--export-reestimated", action="store_true",
                   help="also export a copy with BatchNorm statistics re-estimated (to <out>/<name>-bn_reestimated)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    p.add_argument("--rebuild-data", action="store_true",
                   help="generate the built-in dataset's prepared files again first (when they are damaged)")
    p.add_argument("--backend", default=None, help="training backend: jax (default) or tensorflow")
    p.add_argument("--mlflow", default=None, metavar="URI", help=MLFLOW_HELP)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("study", help="run a placements x rates x seeds grid and write a report")
    p.add_argument("--preset", default="quick", help="quick (default: mlp and a deep resnet, under 7 min on 2 cores) or full")
    p.add_argument("--config", default=None, help="TOML study file; keys it leaves out come from the preset")
    p.add_argument("--out", default=None, help="study folder (default studies/<preset or config name>)")
    p.add_argument("--executor", default=None, choices=("local", "ray"),
                   help="where runs train: local (default; this machine) or ray (a Ray cluster)")
    p.add_argument("--address", default=None,
                   help="HOST:PORT of the Ray head node (with --executor ray; default $RAY_ADDRESS)")
    p.add_argument("--workers", type=int, default=None,
                   help="local executor: parallel training processes (default: one per core, at most 4)")
    p.add_argument("--resume", action="store_true",
                   help="also continue half-trained runs of a killed study from their last epoch "
                        "(exported runs are always skipped)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--rebuild-data", action="store_true",
                   help="generate the built-in dataset's prepared files again first (when they are damaged)")
    p.add_argument("--backend", default=None, help="training backend: jax (default) or tensorflow")
    p.add_argument("--mlflow", default=None, metavar="URI", help=MLFLOW_HELP)
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("tune", help="search placements, kinds, rates and options with KerasTuner; export the best")
    p.add_argument("--config", default=None, help="TOML tune file (search space and settings; flags override it)")
    p.add_argument("--model", default=None, help="architecture (default mlp)")
    p.add_argument("--placements", default=None, help="comma-separated placements (default: all registered)")
    p.add_argument("--dataset", default=None, help="dataset name (default mnist1d)")
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default $KERASREG_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--tuner", default=None, choices=("random", "bayesian", "hyperband"), help="default random")
    p.add_argument("--max-trials", type=int, default=None, help="default 10 (hyperband sets its own)")
    p.add_argument("--objective", default=None,
                   help="val_accuracy (default), val_loss, or a gap such as clean_gap_accuracy (minimised)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per trial (default 20)")
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument("--best", type=int, default=None, help="export this many best trials (default 3)")
    p.add_argument("--out", default=None, help="tune folder (default tunes/<config name or model>)")
    p.add_argument("--resume", action="store_true", help="continue a killed search in --out")
    p.add_argument("--chief", default=None, metavar="HOST:PORT", help="serve the search to workers at this address")
    p.add_argument("--worker", default=None, metavar="HOST:PORT", help="train trials for the chief at this address")
    p.add_argument("--tuner-id", default=None,
                   help="worker id (default worker-<host>-<pid>); restart a worker with its id to resume its trial")
    p.add_argument("--mlflow", default=None, metavar="URI", help=MLFLOW_HELP)
    p.add_argument("--quiet", action="store_true", help="no per-trial display")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("compare", help="re-evaluate exported runs and compare them side by side")
    p.add_argument("paths", nargs="+", metavar="PATH", help="export folders, or folders holding exports")
    p.add_argument("--out", default=None,
                   help="where compare.csv, compare.md and plots go (default: the folder given, else ./compare)")
    p.add_argument("--sort", default="clean_gap", help="column to sort by, best first (default clean_gap)")
    p.add_argument("--data-dir", default=None,
                   help="TFDS data directory (default $KERASREG_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--no-plots", action="store_true", help="write only compare.csv and compare.md")
    p.add_argument("--skip-invalid", action="store_true",
                   help="compare the exports that verify and list the others (default: name them all and stop)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("diagnose", help="does dropout feed BatchNorm in a trained model, and what does it cost?")
    p.add_argument("model", metavar="MODEL", help="a .keras file (any Keras 3 model) or a kerasreg export folder")
    p.add_argument("--dataset", default=None, help="dataset name (default: the export's own dataset)")
    p.add_argument("--data-dir", default=None,
                   help="TFDS data directory (default $KERASREG_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--test", action="store_true", help="also measure the test split")
    p.add_argument("--mc-samples", type=int, default=0, metavar="N",
                   help="MC-dropout passes over the validation split (default 0: none)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="rows per training-mode batch, as in your fit (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the clean-gap subset and MC-dropout (default 0)")
    p.add_argument("--out", default=None, help="also write diagnose.md, diagnose.html and diagnose.json here")
    p.add_argument("--overwrite", action="store_true", help="replace a diagnosis already in --out")
    p.add_argument("--unsafe-load", action="store_true",
                   help="load the .keras file with Keras's safe mode off (runs Lambda layers' code: trusted files only)")
    p.set_defaults(func=cmd_diagnose)
    return parser


def _report(command, exc):
    """Exit code and one-line message for an exception: the CLI's single error boundary."""
    from kerasreg._locks import LockedError

    # Only a trained run can have failed: a refusal before any training does not pay for Keras's import here.
    trainer = sys.modules.get("kerasreg.training.trainer")
    if trainer is not None and isinstance(exc, trainer.TrainingFailed):  # diverged: recorded, not a usage error
        print(f"kerasreg {command}: failed: {exc}", file=sys.stderr)
        return 1
    if isinstance(exc, OSError):  # the file, the reason and what to do
        from kerasreg._files import describe

        print(f"kerasreg {command}: error: {describe(exc)}", file=sys.stderr)
        return 2
    if isinstance(exc, (ValueError, LockedError, ImportError)):  # ImportError: an extra not installed
        print(f"kerasreg {command}: error: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, MemoryError):
        print(f"kerasreg {command}: error: out of memory; use a smaller model or batch size.", file=sys.stderr)
        return 2
    print(f"kerasreg {command}: unexpected error: {type(exc).__name__}: {exc}\n"
          f"Run again with --debug for the full traceback.", file=sys.stderr)
    return 1


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds as from Ctrl-C (locks released, temporaries removed)."""


def _terminate(signum, frame):
    raise _Terminated()


def _resend_swallowed_interrupts(hook):
    """`sys.unraisablehook` that sends a swallowed Ctrl-C or SIGTERM again; other unraisables go to `hook`.

    Python ignores an exception raised inside a garbage-collection callback (JAX registers one), so an
    interrupt landing there would be lost and training would go on. Sent again, it is raised where the
    program is next: from another thread a moment later, since a signal sent from here would be raised
    inside this hook and be ignored too.
    """
    def resend(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            signum = signal.SIGTERM if isinstance(unraisable.exc_value, _Terminated) else signal.SIGINT
            threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()
        else:
            hook(unraisable)
    return resend


def _silence_stdout():
    """Point stdout at /dev/null so the interpreter's final flush cannot raise BrokenPipeError again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv=None):
    """Run the `kerasreg` command; returns the exit code.

    Exit codes: 0 success; 2 bad input or environment (a message names the
    value: argument, file, lock holder, configuration that differs); 1 a
    run that failed on its own (diverged), a study with failed runs, or an
    unexpected error (add `--debug`, anywhere, for the traceback).

    Called with a list (from Python: a notebook, a test), it keeps the
    worker process it exports through for the next call, as `kerasreg.train`
    does; run as the program (`argv=None`), it ends it before returning.

    Example:

    >>> main(["list"])  # doctest: +SKIP
    0
    """
    as_program = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    args = make_parser().parse_args(argv)
    with contextlib.ExitStack() as stack:
        if not debug:
            stack.enter_context(_quiet.filtered_stderr())
        if as_program:
            # Workers end before the filter does, so it passes on all they wrote before the process exits. A
            # worker kept by a call from Python writes through the filter's thread for as long as it lives.
            stack.callback(_processes.shutdown)
        return _run(args, debug)


def _run(args, debug):
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    previous_hook = sys.unraisablehook
    if on_main_thread:
        sys.unraisablehook = _resend_swallowed_interrupts(previous_hook)
    try:
        code = args.func(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _silence_stdout()
        print(f"kerasreg {args.command}: output closed early (broken pipe).", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        if debug:
            raise
        name, code = ("SIGTERM", 143) if isinstance(exc, _Terminated) else ("SIGINT", 130)
        again = " Run the same command with --resume to continue." if args.command in ("train", "study") else ""
        print(f"kerasreg {args.command}: interrupted ({name}); workers stopped, nothing half-written.{again}",
              file=sys.stderr)
        return code
    except Exception as exc:
        if debug:
            raise
        return _report(args.command, exc)
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
            sys.unraisablehook = previous_hook
