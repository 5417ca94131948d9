"""The `kerasreg` command: its flags, parsing and error boundary; `kerasreg._subcommands` calls the public API."""

import argparse
import contextlib
import os
import sys

from kerasreg import _interrupts, _processes, _quiet
from kerasreg._subcommands import (cmd_build, cmd_compare, cmd_data_import, cmd_data_info, cmd_data_list, cmd_diagnose,
                                   cmd_list, cmd_study, cmd_train, cmd_tune)
from kerasreg._version import __version__
from kerasreg.data.defaults import VALIDATION_SPLIT
from kerasreg.training import defaults
from kerasreg.tuning import defaults as tune_defaults


def _shape(text):
    """Parse `40` or `28,28,1` into a tuple of ints."""
    try:
        return tuple(int(d) for d in text.replace("x", ",").split(",") if d)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"Expected comma-separated ints such as 40 or 28,28,1. Received: {text!r}"
        ) from None


def add_model_flags(parser):
    """Flags for every `build_model` option and architecture option, shared by `build` and `train`."""
    from kerasreg.models.options import BUILD_OPTIONS, architecture_help, architecture_options

    for option in BUILD_OPTIONS:
        default = "" if option.default is None else f" (default {option.default})"
        parser.add_argument(option.flag, type=option.type, default=None, help=option.help + default)
    for name, per_model in architecture_options().items():
        # Text, parsed once the model is known: `--filters 4` is 4 for one model and (4,) for another.
        parser.add_argument("--" + name.replace("_", "-"), default=None, metavar="VALUE",
                            help=architecture_help(name, per_model))


DATA_DIR = "default $KERASREG_DATA_DIR or ~/tensorflow_datasets"


def _parent(*flags):
    """A parser for `parents=[...]` holding `flags`, `(name, options)` pairs: flags several commands take."""
    parser = argparse.ArgumentParser(add_help=False)
    for name, options in flags:
        parser.add_argument(name, **options)
    return parser


def _shared_flags():
    """The flags several commands take, each defined once, in the groups the commands take them in."""
    return {
        "data_dir": _parent(("--data-dir", {"help": f"TFDS data directory ({DATA_DIR})"})),
        "run": _parent(("--model", {"help": "architecture (default mlp)"}),
                       ("--dataset", {"help": "dataset name (default mnist1d)"}),
                       ("--seed", {"type": int, "help": "default 0"})),
        "training": _parent(("--rebuild-data", {"action": "store_true", "help": "generate the built-in dataset's "
                                                "prepared files again first (when they are damaged)"}),
                            ("--backend", {"help": "training backend: jax (default) or tensorflow"})),
        "mlflow": _parent(("--mlflow", {"metavar": "URI", "help": "log to this MLflow tracking URI, e.g. "
                                        "http://127.0.0.1:5000 (needs kerasreg[mlflow])"})),
    }


def _command(sub, name, func, help, parents=()):
    parser = sub.add_parser(name, help=help, parents=list(parents))
    parser.set_defaults(func=func)
    return parser


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
    _command(sub, "list", cmd_list, "list models, placements, dropout kinds and norm kinds")
    shared = _shared_flags()
    for add in (_add_build, _add_data, _add_train, _add_study, _add_tune, _add_compare, _add_diagnose):
        add(sub, shared)
    return parser


def _add_build(sub, shared):
    p = _command(sub, "build", cmd_build, "build a model and print its summary")
    p.add_argument("model", help="architecture name (see `kerasreg list`)")
    p.add_argument("--input-shape", type=_shape, required=True, help="e.g. 40 or 8,8,1")
    p.add_argument("--num-classes", type=int, required=True)
    p.add_argument("--seed", type=int, default=None)
    add_model_flags(p)


def _add_data(sub, shared):
    p = sub.add_parser("data", help="list datasets, describe one, or import your own")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    data_dir = [_parent(("--data-dir", {"help": DATA_DIR}))]  # inside `kerasreg data`, the directory is the topic
    _command(data_sub, "list", cmd_data_list, "built-in datasets and TFDS datasets prepared in the data directory",
             data_dir)
    q = _command(data_sub, "info", cmd_data_info, "describe one dataset (nothing is downloaded)", data_dir)
    q.add_argument("name")
    q.add_argument("--source", default=None, help="an imported dataset's source: check it is unchanged (sha256)")
    q = _command(data_sub, "import", cmd_data_import, "import an .npz, a CSV file or an image folder as a TFDS dataset",
                 data_dir)
    q.add_argument("name", help="dataset name for --dataset and study files (lowercase, digits, _)")
    q.add_argument("source", help="x.npz, table.csv, or a folder of <class>/ image folders")
    q.add_argument("--label", default=None, help="CSV label column (default: the column named label)")
    q.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="resize images to H x W (default: the first image's size)")
    q.add_argument("--test-split", type=float, default=0.2,
                   help="fraction held out as test when the source has no test part (default 0.2)")
    q.add_argument("--seed", type=int, default=0, help="seed choosing the test examples (default 0)")
    q.add_argument("--overwrite", action="store_true", help="replace an earlier import of the same name")


def _add_train(sub, shared):
    p = _command(sub, "train", cmd_train, "train one configuration and export it",
                 [shared[name] for name in ("run", "data_dir", "training", "mlflow")])
    add_model_flags(p)
    p.add_argument("--validation-split", type=float, default=None,
                   help=f"fraction of train held out (default {VALIDATION_SPLIT})")
    p.add_argument("--epochs", type=int, default=None, help=f"default {defaults.EPOCHS}")
    p.add_argument("--patience", type=int, default=None,
                   help="stop once validation loss has not improved for this many epochs (watched from epoch "
                        "patience + 1 on), keeping the best epoch (default: train all epochs)")
    p.add_argument("--batch-size", type=int, default=None, help=f"default {defaults.BATCH_SIZE}")
    p.add_argument("--optimizer", default=None, help=f"default {defaults.OPTIMIZER}")
    p.add_argument("--learning-rate", type=float, default=None, help=f"default {defaults.LEARNING_RATE:g}")
    p.add_argument("--out", default="saved_models", help="export directory (default saved_models)")
    p.add_argument("--name", default=None, help="run name (default derived from the configuration)")
    p.add_argument("--config", default=None, help="TOML file with the same keys as the flags (flags override it)")
    p.add_argument("--resume", action="store_true", help="continue a killed run from its last completed epoch")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export of the same name")
    p.add_argument("--fold-bn", action="store_true", help="also export a BatchNorm-folded SavedModel")
    p.add_argument("--export-reestimated", action="store_true",
                   help="also export a copy with BatchNorm statistics re-estimated (to <out>/<name>-bn_reestimated)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")


def _add_study(sub, shared):
    p = _command(sub, "study", cmd_study, "run a placements x rates x seeds grid and write a report",
                 [shared["training"], shared["mlflow"]])
    p.add_argument("--preset", default="quick",
                   help="quick (default: mlp and a deep resnet on MNIST-1D, about 8 min on 2 cores), full, or digits "
                        "(the deep resnet on real 8x8 handwritten digits)")
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


def _add_tune(sub, shared):
    p = _command(sub, "tune", cmd_tune,
                 "search placements, kinds, rates and options with KerasTuner; export the best",
                 [shared[name] for name in ("run", "data_dir", "mlflow")])
    p.add_argument("--config", default=None, help="TOML tune file (search space and settings; flags override it)")
    p.add_argument("--placements", default=None, help="comma-separated placements (default: all registered)")
    p.add_argument("--tuner", default=None, choices=tune_defaults.TUNERS, help=f"default {tune_defaults.TUNERS[0]}")
    p.add_argument("--max-trials", type=int, default=None,
                   help=f"default {tune_defaults.MAX_TRIALS} (hyperband sets its own)")
    p.add_argument("--objective", default=None,
                   help="val_accuracy (default), val_loss, or a gap such as clean_gap_accuracy (minimised)")
    p.add_argument("--epochs", type=int, default=None, help=f"epochs per trial (default {tune_defaults.EPOCHS})")
    p.add_argument("--best", type=int, default=None,
                   help=f"export this many best trials (default {tune_defaults.BEST})")
    p.add_argument("--out", default=None, help="tune folder (default tunes/<config name or model>)")
    p.add_argument("--resume", action="store_true", help="continue a killed search in --out")
    p.add_argument("--chief", default=None, metavar="HOST:PORT", help="serve the search to workers at this address")
    p.add_argument("--worker", default=None, metavar="HOST:PORT", help="train trials for the chief at this address")
    p.add_argument("--tuner-id", default=None,
                   help="worker id (default worker-<host>-<pid>); restart a worker with its id to resume its trial")
    p.add_argument("--quiet", action="store_true", help="no per-trial display")


def _add_compare(sub, shared):
    p = _command(sub, "compare", cmd_compare, "re-evaluate exported runs and compare them side by side",
                 [shared["data_dir"]])
    p.add_argument("paths", nargs="+", metavar="PATH", help="export folders, or folders holding exports")
    p.add_argument("--out", default=None,
                   help="where compare.csv, compare.md and plots go (default: the folder given, else ./compare)")
    p.add_argument("--sort", default="clean_gap", help="column to sort by, best first (default clean_gap)")
    p.add_argument("--no-plots", action="store_true", help="write only compare.csv and compare.md")
    p.add_argument("--skip-invalid", action="store_true",
                   help="compare the exports that verify and list the others (default: name them all and stop)")


def _add_diagnose(sub, shared):
    p = _command(sub, "diagnose", cmd_diagnose,
                 "does dropout feed BatchNorm in a trained model, and what does it cost?", [shared["data_dir"]])
    p.add_argument("model", metavar="MODEL", help="a .keras file (any Keras 3 model) or a kerasreg export folder")
    p.add_argument("--dataset", default=None, help="dataset name (default: the export's own dataset)")
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


def _explain(command, exc):
    """Exit code and one-line message for an exception: the CLI's single error boundary."""
    from kerasreg._locks import LockedError

    if isinstance(exc, KeyboardInterrupt):
        name, code = _interrupts.signal_of(exc)
        again = " Run the same command with --resume to continue." if command in ("train", "study") else ""
        return code, f"interrupted ({name}); workers stopped, nothing half-written.{again}"
    # Only a trained run can have failed: a refusal before any training does not pay for Keras's import here.
    trainer = sys.modules.get("kerasreg.training.trainer")
    if trainer is not None and isinstance(exc, trainer.TrainingFailed):  # diverged: recorded, not a usage error
        return 1, f"failed: {exc}"
    if isinstance(exc, OSError):  # the file, the reason and what to do
        from kerasreg._files import describe

        return 2, f"error: {describe(exc)}"
    if isinstance(exc, (ValueError, LockedError, ImportError)):  # ImportError: an extra not installed
        return 2, f"error: {exc}"
    if isinstance(exc, MemoryError):
        return 2, "error: out of memory; use a smaller model or batch size."
    return 1, f"unexpected error: {type(exc).__name__}: {exc}\nRun again with --debug for the full traceback."


def _fail(command, code, message):
    print(f"kerasreg {command}: {message}", file=sys.stderr)
    return code


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
    with _interrupts.as_keyboard_interrupts():
        try:
            code = args.func(args)
            sys.stdout.flush()
            return code
        except BrokenPipeError:
            _silence_stdout()
            return _fail(args.command, 1, "output closed early (broken pipe).")
        except (KeyboardInterrupt, Exception) as exc:
            if debug:
                raise
            return _fail(args.command, *_explain(args.command, exc))
