"""Writing an export: SavedModel, `.keras`, history and a checksummed manifest.

Writing goes to a hidden temporary sibling (`out/.<name>.tmp-<pid>-<hex>`)
that is renamed into place, so a crash never leaves a half export; an
existing export is never replaced unless asked to. SavedModels are always
written by TensorFlow: in-process on the TensorFlow backend; on JAX a
TensorFlow worker process (`kerasreg._processes.call_on`) writes them from
the `.keras` file just saved. (A SavedModel exported under JAX goes through
jax2tf: it serves, but TFLite conversion fails on the seed-generator state.)
Every SavedModel is checked before the export is moved into place: on a
seeded sample of inputs it must give the trained model's outputs, so the
metrics measured on the trained model (the manifest's) hold for the export.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import importlib
import json
import os
import pathlib
import platform
import secrets
import shutil

import keras
import numpy as np
import tensorflow as tf

from kerasreg import _processes
from kerasreg._files import fsync_dir, naming, os_error_from_text, write_atomic
from kerasreg._json import jsonable
from kerasreg._version import __version__
from kerasreg.export.fold_bn import fold_batch_norm, has_graph
from kerasreg.export.layout import (
    HISTORY,
    INPUT_NAME,
    MANIFEST,
    MODEL_FILE,
    OUTPUT_NAME,
    RUN_DIR_EXTRAS,
    SAVED_MODEL,
    SAVED_MODEL_FOLDED,
    SCHEMA,
    ExportExistsError,
    files,
    manifest_digest,
    sha256,
)
from kerasreg.export.naming import check_export_target, run_name
from kerasreg.models import factory as _factory  # noqa: F401  (registers kerasreg's Keras classes for load_model)
from kerasreg.models.options import RECORDED
from kerasreg.training import RunResult


_FOLD_CHECK_ATOL = 1e-4
_SERVING_CHECK_EXAMPLES = 64
_SERVING_CHECK_ATOL = 1e-4


def _probe(input_shape, dtype, examples=8):
    return np.random.default_rng(0).normal(size=(examples, *input_shape)).astype(dtype)


def _check_serving(path, probe, expected):
    """The SavedModel at `path` gives `expected` on `probe`; returns the check for the manifest."""
    loaded = tf.saved_model.load(str(path))  # held: its functions need its variables alive
    served = loaded.serve(tf.constant(probe)).numpy()
    diff = float(np.max(np.abs(served - expected)))
    if not diff <= _SERVING_CHECK_ATOL:
        raise RuntimeError(
            f"The SavedModel written to {path} differs from the trained model by {diff:g} on "
            f"{len(probe)} sample inputs (more than {_SERVING_CHECK_ATOL:g}); the export was not written."
        )
    return {"examples": len(probe), "max_abs_diff": diff}


def _input_spec(model):
    if not has_graph(model):
        raise ValueError(
            f"Cannot export model {model.name!r}: it has no defined inputs. Build it on a "
            "`keras.Input` (Sequential or functional), as `kerasreg.build_model` does."
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"Cannot export model {model.name!r}: kerasreg exports models with one input and one "
            f"output. Received {len(model.inputs)} inputs and {len(model.outputs)} outputs."
        )
    tensor = model.inputs[0]
    return tuple(tensor.shape[1:]), str(tensor.dtype)


def _write_saved_model(model, path, input_shape, dtype):
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve",
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((None, *input_shape), dtype, name=INPUT_NAME)],
    )
    # tf.saved_model logs "Assets written to <hidden temporary path>" at INFO: noise for users.
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("WARNING")
    try:
        archive.write_out(str(path), verbose=False)
    finally:
        logger.setLevel(level)


def _write_history(history, path):
    columns = [c for c in history if c != "epoch"]
    epochs = len(history[columns[0]]) if columns else 0
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", *columns])
        for epoch in range(epochs):
            writer.writerow([epoch, *(_csv_value(history[c][epoch]) for c in columns)])


def _csv_value(value):
    return "" if value is None else repr(float(value)) if isinstance(value, (float, np.floating)) else value


def _metrics(result):
    if result is None:
        return None
    history = result.history or {}
    times = [t for t in (result.epoch_times or []) if t is not None]
    return {
        "val_accuracy": result.val_metrics.get("accuracy"),
        "val_loss": result.val_metrics.get("loss"),
        "test_accuracy": result.test_metrics.get("accuracy"),
        "test_loss": result.test_metrics.get("loss"),
        **{k: result.gaps.get(k) for k in ("clean_gap_accuracy", "clean_gap_loss",
                                          "reported_gap_accuracy", "reported_gap_loss")},
        "variance_shift_max": result.variance_shift_max,
        "epochs_run": len(history.get("loss", [])) or result.config.get("epochs_run"),
        "best_epoch": result.config.get("best_epoch"),
        "epoch_time_total": float(sum(times)) if times else None,
        **(result.reestimated or {}),
    }


def _manifest(name, model, config, result, input_shape, dtype, folded, checked):
    kerasreg_config = getattr(model, "kerasreg_config", None) or {}
    model_part = {
        "architecture": kerasreg_config.get("model", model.name),
        **{key: kerasreg_config.get(key) for key in RECORDED},
        "parameters": int(model.count_params()),
        "keras_class": type(model).__name__,
    }
    dataset = None
    if config.get("dataset") is not None:
        dataset = {
            "name": config["dataset"],
            "validation_split": config.get("validation_split"),
            "split_seed": config.get("split_seed"),
            "standardize": bool(config.get("standardize", False)),
            "source_sha256": config.get("source_sha256"),
        }
    training = None
    if result is not None:
        training = {key: config.get(key) for key in (
            "epochs", "epochs_run", "batch_size", "optimizer", "learning_rate")}
        training["stop_reason"] = result.stop_reason
        training["backend"] = config.get("backend", keras.backend.backend())
        training["cores"] = config.get("cores")
        # When the run began and how long its worker took: a study's floor and busy time come from these.
        training["started"] = None if result.started is None else datetime.datetime.fromtimestamp(
            result.started, datetime.timezone.utc).isoformat(timespec="milliseconds")
        training["seconds"] = result.seconds
    return jsonable({
        "schema": SCHEMA,
        "name": name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "kerasreg": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
        "model": model_part,
        "input": {"shape": list(input_shape), "dtype": dtype, "name": INPUT_NAME},
        "num_classes": int(model.outputs[0].shape[-1]),
        "serving": {
            "signatures": ["serving_default", "serve"],
            "input": INPUT_NAME,
            "output": OUTPUT_NAME,
            "checked": checked,
        },
        "dataset": dataset,
        "training": training,
        "seed": config.get("seed"),
        # The backend that trained the model; the SavedModel is TensorFlow's either way.
        "backend": config.get("backend") or keras.backend.backend(),
        "metrics": _metrics(result),
        "folded": folded,
        "config": config,
    })


def _fold_and_write(model, path, input_shape, dtype):
    folded = fold_batch_norm(model)
    probe = _probe(input_shape, dtype)
    diff = float(np.max(np.abs(
        np.asarray(model(probe, training=False)) - np.asarray(folded(probe, training=False))
    )))
    if not diff <= _FOLD_CHECK_ATOL:
        raise RuntimeError(
            f"Folding BatchNormalization changed the outputs of model {model.name!r} by {diff:g} "
            f"(more than {_FOLD_CHECK_ATOL:g}); not writing {SAVED_MODEL_FOLDED}/."
        )
    _write_saved_model(folded, path, input_shape, dtype)
    return {"path": SAVED_MODEL_FOLDED, "pairs": [list(p) for p in folded.folded_pairs], "max_abs_diff": diff}


def _custom_modules(model):
    """Modules defining the model's layer classes outside Keras and kerasreg (the TensorFlow worker imports them)."""
    layers = [model, *model._flatten_layers(include_self=False, recursive=True)]
    modules = {type(layer).__module__ for layer in layers}
    return sorted(m for m in modules if m.split(".")[0] not in ("keras", "kerasreg", "__main__"))


def _saved_models_from_file(keras_file, saved_model, folded, modules, probe, expected):
    """Run in a TensorFlow worker: load a `.keras` file, write and check its SavedModel (and the folded one)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # loading then names the class it cannot find
    model = keras.saving.load_model(keras_file, compile=False)
    input_shape, dtype = _input_spec(model)
    with _tensorflow_io_errors(saved_model):
        _write_saved_model(model, saved_model, input_shape, dtype)
        checked = _check_serving(saved_model, probe, expected)
        return checked, _fold_and_write(model, folded, input_shape, dtype) if folded else None


@contextlib.contextmanager
def _tensorflow_io_errors(path):
    """TensorFlow's write errors that carry an operating-system reason become an `OSError` naming `path`."""
    try:
        yield
    except tf.errors.OpError as exc:
        error = os_error_from_text(exc.message, path)
        if error is None:
            raise
        raise error from None


def _write_export(tmp, name, model, config, result, fold_bn):
    input_shape, dtype = _input_spec(model)
    model.save(tmp / MODEL_FILE)
    probe = _probe(input_shape, dtype, _SERVING_CHECK_EXAMPLES)
    expected = np.asarray(model(probe, training=False))
    if keras.backend.backend() == "tensorflow":
        _write_saved_model(model, tmp / SAVED_MODEL, input_shape, dtype)
        checked = _check_serving(tmp / SAVED_MODEL, probe, expected)
        folded = _fold_and_write(model, tmp / SAVED_MODEL_FOLDED, input_shape, dtype) if fold_bn else None
    else:
        # Another backend's SavedModel would go through jax2tf and not convert
        # to TFLite: TensorFlow writes it from the `.keras` file just saved.
        checked, folded = _processes.call_on(
            "tensorflow", _saved_models_from_file, str(tmp / MODEL_FILE), str(tmp / SAVED_MODEL),
            str(tmp / SAVED_MODEL_FOLDED) if fold_bn else None, _custom_modules(model), probe, expected)
    if result is not None:
        history = result.history
    else:
        history = getattr(getattr(model, "history", None), "history", None)
    if history:
        _write_history(history, tmp / HISTORY)
    run_dir = getattr(result, "run_dir", None)
    if run_dir is not None:
        for extra in RUN_DIR_EXTRAS:
            source = pathlib.Path(run_dir) / extra
            if source.is_dir():
                shutil.copytree(source, tmp / extra)
            elif source.is_file():
                shutil.copy2(source, tmp / extra)
    manifest = _manifest(name, model, config, result, input_shape, dtype, folded, checked)
    manifest["files"] = {rel: sha256(tmp / rel) for rel in files(tmp)}
    manifest["manifest_sha256"] = manifest_digest(manifest)
    write_atomic(tmp / MANIFEST, json.dumps(manifest, indent=2, allow_nan=False) + "\n")


def _move_into_place(tmp, target, overwrite):
    if not overwrite:
        if target.exists() or target.is_symlink():
            raise ExportExistsError(
                f"Export {target} appeared while this export was being written; it was left "
                "as it is. Pass overwrite=True to replace it."
            )
        try:
            os.rename(tmp, target)
        except OSError as exc:  # a non-empty directory created meanwhile
            raise ExportExistsError(f"Export {target} appeared while this export was being written.") from exc
        return
    trash = None
    if target.exists() or target.is_symlink():
        check_export_target(target.parent, target.name, overwrite=True)
        trash = target.parent / f".{target.name}.trash-{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(target, trash)
    try:
        os.rename(tmp, target)
    except BaseException:
        if trash is not None:
            os.rename(trash, target)
        raise
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def export_run(
    model_or_result: RunResult | keras.Model,
    out: str | os.PathLike = "saved_models",
    name: str | None = None,
    *,
    overwrite: bool = False,
    fold_bn: bool = False,
) -> pathlib.Path:
    """Export a trained run (or a bare model) as a self-describing folder `out/name`.

    Writes the SavedModel, the `.keras` file, `history.csv`, the run
    directory's `gaps.jsonl`, `variance_shift.jsonl` and `logs/`, and a
    `manifest.json` with checksums of all of them (layout and schema in this
    module's docstring). Everything is written to a hidden temporary
    sibling folder first and renamed into place, so an error or a crash
    leaves either the complete export or nothing (a killed process may leave
    a hidden `.<name>.tmp-*` folder, which `load` and `compare` ignore).

    Training vs inference: the SavedModel serves the model in inference
    mode (Dropout off, BatchNormalization on its moving statistics).

    Args:
        model_or_result: a `RunResult` from `train()` (preferred: metrics,
            gaps, history and dataset go into the manifest) or a
            `keras.Model` (the manifest then has `metrics: null` and
            `dataset: null`; `history.csv` is written only when the model
            was fitted with `model.fit` and still holds its `History`).
        out: str or path. Directory the export goes into, created if
            missing. Defaults to `"saved_models"`.
        name: str or None. Folder name; `None` uses `run_name(config)`.
            Defaults to `None`.
        overwrite: bool. Replace an existing export of the same name
            (only a folder that is a kerasreg export is ever replaced).
            Defaults to `False`.
        fold_bn: bool. Also write `saved_model_folded/`, an inference
            SavedModel with BatchNormalization folded into the preceding
            Dense/Conv layers (see `fold_batch_norm`). Defaults to `False`.

    Returns:
        pathlib.Path of the export.

    Raises:
        ExportExistsError: the export exists and `overwrite` is false; nothing
            is changed.

    Example:

    >>> import kerasreg
    >>> data = kerasreg.load_dataset("mnist1d")
    >>> model = kerasreg.build_model("mlp", input_shape=data.input_shape, num_classes=10, seed=0)
    >>> result = kerasreg.train(model, data, epochs=2, verbose=0)
    >>> path = kerasreg.export_run(result, out="saved_models")  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'mlp-bn_act_drop-standard0.2-seed0'
    """
    if isinstance(model_or_result, RunResult):
        result, model = model_or_result, model_or_result.model
        config = dict(result.config)
    elif isinstance(model_or_result, keras.Model):
        result, model = None, model_or_result
        config = dict(getattr(model, "kerasreg_config", None) or {})
    else:
        raise TypeError(
            "export_run expects a RunResult from kerasreg.train() or a keras.Model. "
            f"Received: {type(model_or_result).__name__}"
        )
    name = run_name(model_or_result) if name is None else name
    target = check_export_target(out, name, overwrite)
    out = target.parent
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        with naming(target), _tensorflow_io_errors(target):
            _write_export(tmp, name, model, config, result, fold_bn)
        _move_into_place(tmp, target, overwrite)
        fsync_dir(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
