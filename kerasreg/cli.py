"""The `kerasreg` command: argument parsing only; the work is in the public API."""

import argparse
import dataclasses
import pathlib
import sys


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
    """Flags for every `build_model` option, shared by `build`, `train` and `study`."""
    parser.add_argument("--placement", default=None, help="placement name (default bn_act_drop)")
    parser.add_argument("--dropout", default=None, help="dropout kind (default: the placement's, else standard)")
    parser.add_argument("--dropout-rate", type=float, default=None, help="fraction dropped, in [0, 1) (default 0.2)")
    parser.add_argument("--norm", default=None, help="norm kind (default batch)")
    parser.add_argument("--bn-preset", default=None, help="keras or torch (default keras)")
    parser.add_argument("--api", default=None, help="functional or sequential (default functional)")
    parser.add_argument("--widths", type=_shape, default=None, help="mlp/tutorial_net hidden widths, e.g. 100,100")
    parser.add_argument("--filters", type=_shape, default=None, help="cnn filters per block, e.g. 32,64")


def model_kwargs(args):
    """`build_model` keyword arguments given on the command line (unset ones left out)."""
    names = ("placement", "dropout", "dropout_rate", "norm", "bn_preset", "api", "widths")
    kwargs = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.filters is not None:
        kwargs["filters"] = args.filters[0] if args.model == "resnet_small" else args.filters
    return kwargs


def cmd_build(args):
    import kerasreg

    model = kerasreg.build_model(
        args.model, input_shape=args.input_shape, num_classes=args.num_classes,
        seed=args.seed, **model_kwargs(args),
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
    return 0


def cmd_train(args):
    from kerasreg import runs

    flags = {
        "model": args.model, "dataset": args.dataset, "data_dir": args.data_dir,
        "validation_split": args.validation_split, "epochs": args.epochs,
        "batch_size": args.batch_size, "optimizer": args.optimizer,
        "learning_rate": args.learning_rate, "seed": args.seed, "name": args.name, "backend": args.backend,
        **model_kwargs(args),
    }
    if args.config:
        config = runs.RunConfig.from_toml(args.config, **flags)
    else:
        config = runs.RunConfig.from_dict({k: v for k, v in flags.items() if v is not None})
    path = runs.run(config, out=args.out, overwrite=args.overwrite, resume=args.resume,
                    fold_bn=args.fold_bn, verbose=0 if args.quiet else 1)
    print(f"Exported {path}")
    return 0


def cmd_compare(args):
    import kerasreg
    from kerasreg.analysis import compare

    comparison = kerasreg.compare_exports(args.paths, sort=args.sort, data_dir=args.data_dir)
    skipped = [str(path) for path in comparison.skipped if path.is_dir()]
    if skipped:
        print(f"skipped (no export inside): {', '.join(skipped)}", file=sys.stderr)
    print(comparison.format_table())
    out = args.out or compare.default_output_dir(args.paths)
    written = comparison.write(out, plots=not args.no_plots)
    print(f"\nWrote {len(written)} files to {out}: {', '.join(p.name for p in written)}")
    return 0


def cmd_study(args):
    from kerasreg import study

    config = study.StudyConfig.preset(args.preset)
    if args.config:
        config = study.StudyConfig.from_toml(args.config, base=config)
    if args.backend is not None:
        config = dataclasses.replace(config, backend=args.backend)
    out = args.out or f"studies/{args.preset if not args.config else pathlib.Path(args.config).stem}"
    report = study.run_study(config, out, workers=args.workers, resume=args.resume,
                             verbose=0 if args.quiet else 1)
    print("\n".join(f"- {line}" for line in report.findings))
    print(f"Report: {report.files[0]} and {report.files[1]}")
    return 1 if report.failures else 0


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

    p = sub.add_parser("data", help="list datasets or describe one")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    q = data_sub.add_parser("list", help="built-in datasets and TFDS datasets prepared in the data directory")
    q.add_argument("--data-dir", default=None, help="default $KERASREG_DATA_DIR or ~/tensorflow_datasets")
    q.set_defaults(func=cmd_data_list)
    q = data_sub.add_parser("info", help="describe one dataset (nothing is downloaded)")
    q.add_argument("name")
    q.add_argument("--data-dir", default=None, help="default $KERASREG_DATA_DIR or ~/tensorflow_datasets")
    q.set_defaults(func=cmd_data_info)

    p = sub.add_parser("train", help="train one configuration and export it")
    p.add_argument("--model", default=None, help="architecture (default mlp)")
    add_model_flags(p)
    p.add_argument("--dataset", default=None, help="dataset name (default mnist1d)")
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default $KERASREG_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--validation-split", type=float, default=None, help="fraction of train held out (default 0.1)")
    p.add_argument("--epochs", type=int, default=None, help="default 50")
    p.add_argument("--batch-size", type=int, default=None, help="default 100")
    p.add_argument("--optimizer", default=None, help="default adam")
    p.add_argument("--learning-rate", type=float, default=None, help="default 1e-3")
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument("--out", default="saved_models", help="export directory (default saved_models)")
    p.add_argument("--name", default=None, help="run name (default derived from the configuration)")
    p.add_argument("--config", default=None, help="TOML file with the same keys as the flags (flags override it)")
    p.add_argument("--resume", action="store_true", help="continue a killed run from its last completed epoch")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export of the same name")
    p.add_argument("--fold-bn", action="store_true", help="also export a BatchNorm-folded SavedModel")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    p.add_argument("--backend", default=None, help="training backend: jax (default) or tensorflow")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("study", help="run a placements x rates x seeds grid and write a report")
    p.add_argument("--preset", default="quick", help="quick (default; ~5 min on 2 cores) or full")
    p.add_argument("--config", default=None, help="TOML study file; keys it leaves out come from the preset")
    p.add_argument("--out", default=None, help="study folder (default studies/<preset or config name>)")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel training processes (default: one per core, at most 4)")
    p.add_argument("--resume", action="store_true",
                   help="also continue half-trained runs of a killed study from their last epoch "
                        "(exported runs are always skipped)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--backend", default=None, help="training backend: jax (default) or tensorflow")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("compare", help="re-evaluate exported runs and compare them side by side")
    p.add_argument("paths", nargs="+", metavar="PATH", help="export folders, or folders holding exports")
    p.add_argument("--out", default=None,
                   help="where compare.csv, compare.md and plots go (default: the folder given, else ./compare)")
    p.add_argument("--sort", default="clean_gap", help="column to sort by, best first (default clean_gap)")
    p.add_argument("--data-dir", default=None,
                   help="TFDS data directory (default $KERASREG_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--no-plots", action="store_true", help="write only compare.csv and compare.md")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv=None):
    """Run the `kerasreg` command; returns the exit code.

    Example:

    >>> main(["list"])  # doctest: +SKIP
    0
    """
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"kerasreg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # TrainingFailed: the run diverged
        print(f"kerasreg {args.command}: failed: {exc}", file=sys.stderr)
        return 1
