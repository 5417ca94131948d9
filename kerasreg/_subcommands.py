"""What each `kerasreg` subcommand does with its parsed flags: it calls the public API and prints the outcome.

`kerasreg.cli` declares the flags and sends each subcommand here; its error
boundary turns what these raise into an exit code and one line.
"""

import dataclasses
import pathlib
import sys


def cmd_list(args):
    import kerasreg
    from kerasreg.models import get_dropout_kind, get_model_fn, get_norm_kind

    def doc_line(get):
        return lambda name: ((get(name).__doc__ or "").strip().splitlines() or [""])[0]

    def placement(name):
        p = kerasreg.get_placement(name)
        return f"{p.block_text():<48} {p.description}"

    sections = {"Models": (kerasreg.list_models(), doc_line(get_model_fn)),
                "Placements": (kerasreg.list_placements(), placement),
                "Dropout kinds": (kerasreg.list_dropout_kinds(), doc_line(get_dropout_kind)),
                "Norm kinds": (kerasreg.list_norm_kinds(), doc_line(get_norm_kind))}
    print("\n\n".join(f"{title}:" + "".join(f"\n  {name:<16} {describe(name)}" for name in names)
                      for title, (names, describe) in sections.items()))
    return 0


def model_kwargs(args):
    """`build_model`'s options given on the command line, and the architecture's as text (unset ones left out).

    Returns:
        `(build options, architecture options)`: the text of the second is
        parsed once the model is known (`RunConfig`, `architecture_kwargs`).
    """
    from kerasreg.models.options import BUILD_OPTIONS, architecture_options

    def given(names):
        # A model registered after the parser was made has no flag: `getattr` with a default.
        return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}

    return given(o.name for o in BUILD_OPTIONS), given(architecture_options())


def _given(args, *names):
    """The flags `names` (attribute names) that the command line set."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _config(cls, path, flags):
    """A `RunConfig` or `TuneConfig` from the TOML file `path` with `flags` over it, or from `flags` alone."""
    return cls.from_toml(path, **flags) if path else cls.from_dict(flags)


def _rebuild_data(args, config):
    if args.rebuild_data:
        from kerasreg.data import rebuild_dataset

        rebuild_dataset(config.dataset, data_dir=config.data_dir)


def cmd_build(args):
    import kerasreg

    from kerasreg.models.options import architecture_kwargs

    build, options = model_kwargs(args)
    model = kerasreg.build_model(
        args.model, input_shape=args.input_shape, num_classes=args.num_classes,
        seed=args.seed, **build, **architecture_kwargs(args.model, options),
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

    flags = _given(args, "model", "dataset", "data_dir", "validation_split", "epochs", "batch_size", "optimizer",
                   "learning_rate", "seed", "name", "patience", "backend")
    build, options = model_kwargs(args)
    config = _config(runs.RunConfig, args.config, {**flags, **build, **({"options": options} if options else {})})
    _rebuild_data(args, config)
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
    _rebuild_data(args, config)
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

    flags = _given(args, "model", "dataset", "data_dir", "epochs", "tuner", "max_trials", "objective", "best", "seed")
    if args.placements:
        flags["placements"] = args.placements.split(",")
    config = _config(tuning.TuneConfig, args.config, flags)
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
        if args.out:
            raise ValueError("--out writes the measured report, which needs data: pass --dataset NAME too "
                             "(see `kerasreg data list`), or leave --out out for the audit without data.")
        from kerasreg.diagnosis.batch_norm_audit import without_data

        print("\n".join(f"- {sentence}" for sentence in without_data(model)))
        return 0
    result = kerasreg.diagnose(model, dataset, test=args.test, mc_samples=args.mc_samples, batch_size=args.batch_size,
                               seed=args.seed, data_dir=args.data_dir, manifest=manifest)
    print(result.format())
    if args.out:
        written = result.write(args.out, overwrite=args.overwrite)
        print(f"\nWrote {', '.join(str(path) for path in written)}")
    return 0
