"""Export runs as self-describing, checksummed folders, and load them back.

An export is a folder that any TensorFlow tool can serve and that says what
it holds:

```
saved_models/<run-name>/
  saved_model/          TF SavedModel (keras.export.ExportArchive): signatures
                        `serving_default` and `serve`, input `inputs` of shape
                        (None, *input_shape) float32, output `output_0` (class
                        probabilities, inference mode)
  saved_model_folded/   only with fold_bn=True: the same function with every
                        BatchNormalization that directly follows a Dense/Conv
                        folded into that layer's kernel and bias
  model.keras           the Keras model, loadable with safe_mode on
  history.csv           per-epoch metrics and gaps (absent for a bare model
                        that was never fitted)
  gaps.jsonl, variance_shift.jsonl, logs/
                        copied from the run directory when present
  manifest.json         what the export is, see below
```

`manifest.json` (schema `"kerasreg.export/1"`; keys are only ever added
within a schema version, a breaking change bumps the number):

- `schema`: `"kerasreg.export/1"`.
- `name`, `created` (UTC, ISO 8601), `versions` (kerasreg, tensorflow, keras, python).
- `model`: `architecture`, `placement`, `block`, `dropout_scope`, `dropout`
  (kind), `dropout_rate`, `norm` (kind), `bn_preset`, `api`, `options`,
  `parameters` (`model.count_params()`), `keras_class`. Non-kerasreg models
  have `architecture` = the model name and `null` for the kerasreg fields.
- `input`: `shape` (without the batch axis), `dtype`, `name`; `num_classes`.
- `serving`: `signatures`, `input` and `output` key names of the SavedModel.
- `dataset`: `name`, `validation_split`, `split_seed`, `standardize`, or
  `null`. `kerasreg.load_dataset(name, validation_split=..., seed=split_seed)`
  reproduces the splits the run used.
- `training`: epochs, epochs run, batch size, optimizer, learning rate,
  stop reason, or `null`; `seed`: the training seed (else the model's seed).
- `metrics`: `val_accuracy`, `val_loss`, `test_accuracy`, `test_loss`, final
  `clean_gap_accuracy`, `clean_gap_loss`, `reported_gap_accuracy`,
  `reported_gap_loss`, `variance_shift_max` (null without BatchNormalization),
  `epochs_run`, `epoch_time_total` (seconds); `null` for a bare model.
- `folded`: `null`, or `path`, the folded (`weight`, `norm`) layer `pairs` and
  the largest output difference measured at export time (`max_abs_diff`).
- `config`: the full run configuration as recorded by `train()`.
- `files`: sha256 of every file in the export except `manifest.json`,
  keyed by its `/`-separated relative path.
- `manifest_sha256`: sha256 of the manifest's canonical JSON without this
  key, so an edited manifest is detected too. These checksums catch
  corruption and accidental edits; they are not a signature.

Writing goes to a hidden temporary sibling (`out/.<name>.tmp-<pid>-<hex>`)
that is renamed into place, so a crash never leaves a half export; an
existing export is never replaced unless asked to. `load()` verifies every
checksum before anything is used.

References: BatchNormalization folding as in Jacob et al., "Quantization and
Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018 (section 3.2).
"""

import csv
import datetime
import hashlib
import json
import math
import os
import pathlib
import platform
import re
import secrets
import shutil

import keras
import numpy as np
import tensorflow as tf

from kerasreg import placements
from kerasreg.training import RunResult, read_history

SCHEMA = "kerasreg.export/1"
SAVED_MODEL = "saved_model"
SAVED_MODEL_FOLDED = "saved_model_folded"
MANIFEST = "manifest.json"
INPUT_NAME = "inputs"
OUTPUT_NAME = "output_0"
RUN_DIR_EXTRAS = ("gaps.jsonl", "variance_shift.jsonl", "logs")

_WEIGHT_LAYERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_FOLD_CHECK_ATOL = 1e-4


class ExportExistsError(FileExistsError):
    """The export folder already exists and `overwrite` was not given."""


class ExportIntegrityError(ValueError):
    """A file of an export is missing, changed, unlisted, or its manifest was edited."""


class NotAnExportError(ValueError):
    """The folder is not a kerasreg export (it has no readable `manifest.json`)."""


# ---------------------------------------------------------------------------
# Names and targets.
# ---------------------------------------------------------------------------


def _config_of(obj):
    if isinstance(obj, RunResult):
        return obj.config
    if isinstance(obj, keras.Model):
        return getattr(obj, "kerasreg_config", None) or {"model": obj.name}
    return obj


def run_name(config):
    """The default export name of a run, e.g. `mlp-bn_act_drop-standard0.2-seed0`.

    Parts: architecture, placement, dropout kind and rate (`nodrop` when the
    placement has no dropout or the rate is 0), the norm kind and
    `torchbn` when not the defaults, and the seed when there is one.
    Characters other than letters, digits, `.`, `_` and `-` become `_`.

    Args:
        config: dict. A `RunResult.config` or a model's `kerasreg_config`;
            a `RunResult` or a `keras.Model` is accepted too.

    Returns:
        str.

    Example:

    >>> run_name({"model": "mlp", "placement": "bn_act_drop", "dropout": "standard",
    ...           "dropout_rate": 0.2, "block": ["weight", "norm", "act", "drop"], "seed": 0})
    'mlp-bn_act_drop-standard0.2-seed0'
    """
    config = _config_of(config) or {}
    parts = [str(config.get("model") or "model")]
    if config.get("placement"):
        parts.append(str(config["placement"]))
    block, scope, kind = config.get("block"), config.get("dropout_scope"), config.get("dropout")
    if config.get("placement") and (block is None or kind is None):
        try:
            placement = placements.get_placement(config["placement"])
        except ValueError:  # a placement registered in another process only
            placement = None
        if placement is not None:
            if block is None:
                block, scope = placement.block, placement.dropout_scope
            kind = kind or placement.dropout_kind
    uses_dropout = block is None or "drop" in block or scope == "head_only"
    rate = config.get("dropout_rate")
    if rate is not None:
        parts.append(f"{kind or 'standard'}{rate:g}" if uses_dropout and rate > 0 else "nodrop")
    if config.get("norm") not in (None, "batch"):
        parts.append(f"{config['norm']}norm")
    if config.get("bn_preset") not in (None, "keras"):
        parts.append(f"{config['bn_preset']}bn")
    if config.get("seed") is not None:
        parts.append(f"seed{config['seed']}")
    return re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(parts))


def _check_name(name):
    if not isinstance(name, str) or not name or name.startswith(".") \
            or name != os.path.basename(name) or "\\" in name:
        raise ValueError(
            "Invalid value received for argument `name`. Expected a folder name without "
            f"path separators that does not start with '.'. Received: name={name!r}"
        )


def _is_export(path):
    return (pathlib.Path(path) / MANIFEST).is_file()


def check_export_target(out, name, overwrite=False):
    """Fail fast if exporting `name` into `out` would be refused; cheap, writes nothing.

    Call it before a long training run so an existing export stops the run
    before it starts, not after.

    Args:
        out: str or path. The export directory, e.g. `"saved_models"`.
        name: str. The export name (see `run_name`).
        overwrite: bool. Whether an existing export may be replaced.
            Defaults to `False`.

    Returns:
        pathlib.Path. The export's future path, `out/name`.

    Raises:
        ExportExistsError: `out/name` exists and `overwrite` is false, or it
            exists and is not a kerasreg export (never replaced).
        ValueError: `name` is not a plain folder name.

    Example:

    >>> check_export_target("saved_models", "mlp-bn_act_drop-standard0.2-seed0")
    PosixPath('saved_models/mlp-bn_act_drop-standard0.2-seed0')
    """
    _check_name(name)
    out = pathlib.Path(out)
    if out.exists() and not out.is_dir():
        raise ExportExistsError(f"Export directory {out} exists and is not a directory.")
    target = out / name
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise ExportExistsError(
                f"Export {target} already exists. Pass overwrite=True (`--overwrite` on the "
                "command line) to replace it, or choose another name."
            )
        if not _is_export(target):
            raise ExportExistsError(
                f"{target} exists and is not a kerasreg export (no {MANIFEST}); "
                "refusing to replace it even with overwrite=True."
            )
    return target


# ---------------------------------------------------------------------------
# Folding BatchNormalization into the preceding Dense/Conv.
# ---------------------------------------------------------------------------


def _is_foldable_weight(layer):
    return isinstance(layer, _WEIGHT_LAYERS) and keras.activations.serialize(layer.activation) == "linear"


def _channel_axis(layer, rank):
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return 1
    return rank - 1


def _can_fold(weight, norm, rank):
    return (
        _is_foldable_weight(weight)
        and isinstance(norm, keras.layers.BatchNormalization)
        and norm.axis % rank == _channel_axis(weight, rank)
    )


def _graph_nodes(model):
    """The model's own nodes, found backwards from its outputs (shared layers' other uses ignored)."""
    nodes, seen, stack = [], set(), list(model.outputs)
    while stack:
        tensor = stack.pop()
        operation, node_index, _ = tensor._keras_history
        node = operation._inbound_nodes[node_index]
        if id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(node.input_tensors)
    return nodes


def _fold_pairs(model):
    """(weight layer, BatchNormalization) pairs where the BN is the weight output's only consumer."""
    nodes = _graph_nodes(model)
    uses, calls = {}, {}
    for node in nodes:
        calls[id(node.operation)] = calls.get(id(node.operation), 0) + 1
        for tensor in node.input_tensors:
            uses[id(tensor)] = uses.get(id(tensor), 0) + 1
    for tensor in model.outputs:
        uses[id(tensor)] = uses.get(id(tensor), 0) + 1
    pairs = []
    for node in nodes:
        norm = node.operation
        if not isinstance(norm, keras.layers.BatchNormalization) or len(node.input_tensors) != 1:
            continue
        tensor = node.input_tensors[0]
        weight = tensor._keras_history[0]
        if (isinstance(weight, keras.layers.Layer) and uses[id(tensor)] == 1
                and calls.get(id(weight)) == 1 and calls.get(id(norm)) == 1
                and _can_fold(weight, norm, len(tensor.shape))):
            pairs.append((weight, norm))
    order = {id(layer): i for i, layer in enumerate(model.layers)}
    return sorted(pairs, key=lambda pair: order.get(id(pair[0]), -1))


def _folded_weights(weight, norm):
    """Kernel and bias of `weight` with `norm` (in inference mode) folded in, per output channel."""
    kernel = np.asarray(weight.kernel.numpy(), np.float64)
    channels = kernel.shape[-1]
    bias = np.asarray(weight.bias.numpy(), np.float64) if weight.use_bias else np.zeros(channels)
    gamma = np.asarray(norm.gamma.numpy(), np.float64) if norm.scale else np.ones(channels)
    beta = np.asarray(norm.beta.numpy(), np.float64) if norm.center else np.zeros(channels)
    mean = np.asarray(norm.moving_mean.numpy(), np.float64)
    variance = np.asarray(norm.moving_variance.numpy(), np.float64)
    scale = gamma / np.sqrt(variance + norm.epsilon)
    dtype = weight.kernel.dtype
    return [(kernel * scale).astype(dtype), ((bias - mean) * scale + beta).astype(dtype)]


def fold_batch_norm(model):
    """An inference model with each BatchNormalization that follows a Dense/Conv folded into it.

    Training vs inference: in inference mode BatchNormalization is a fixed
    per-channel affine map, `gamma * (x - moving_mean) / sqrt(moving_variance
    + epsilon) + beta`, so when it directly follows a linear Dense or Conv
    layer it can be merged into that layer: `W' = W * s`, `b' = (b - mean) * s
    + beta` with `s = gamma / sqrt(var + eps)` per output channel. The folded
    model has no batch statistics left, so it is for inference only. A BN
    that follows anything else (an activation, dropout, a residual sum), or
    whose input is also used elsewhere, is kept as it is.

    Args:
        model: keras.Model. A Sequential or functional model.

    Returns:
        A new `keras.Model` (the original is not changed) with the folded
        layer pairs listed in its `folded_pairs` attribute as
        `(weight_name, norm_name)` tuples.

    Example:

    >>> import kerasreg
    >>> model = kerasreg.build_model("mlp", placement="bn_before_act", input_shape=(40,), num_classes=10)
    >>> folded = fold_batch_norm(model)
    >>> folded.folded_pairs
    [('block1_weight', 'block1_norm'), ('block2_weight', 'block2_norm')]
    """
    if not isinstance(model, keras.Model) or not _has_graph(model):
        raise ValueError(
            "fold_batch_norm needs a Sequential or functional keras.Model with defined inputs. "
            f"Received: model={model!r}"
        )
    pairs = _fold_pairs(model)
    folded_weight = {id(w): n for w, n in pairs}
    folded_norm = {id(n) for _, n in pairs}
    clones = {}

    def clone(layer):
        if id(layer) in folded_norm:
            return layer  # never called: call_function passes its input through
        config = layer.get_config()
        if id(layer) in folded_weight:
            config["use_bias"] = True
        clones[id(layer)] = layer.__class__.from_config(config)
        return clones[id(layer)]

    if isinstance(model, keras.Sequential):
        source = model.inputs[0]
        new_layers = [clone(layer) for layer in model.layers if id(layer) not in folded_norm]
        folded = keras.Sequential(
            [keras.Input(batch_shape=source.shape, dtype=source.dtype, name=INPUT_NAME), *new_layers],
            name=f"{model.name}_folded",
        )
    else:
        def call(layer, *args, **kwargs):
            return args[0] if id(layer) in folded_norm else layer(*args, **kwargs)

        folded = keras.models.clone_model(model, clone_function=clone, call_function=call)

    originals = {id(layer): layer for layer in model.layers}
    for key, new in clones.items():
        original = originals.get(key)
        if original is None:
            continue
        if key in folded_weight:
            new.set_weights(_folded_weights(original, folded_weight[key]))
        else:
            new.set_weights(original.get_weights())
    folded.folded_pairs = [(w.name, n.name) for w, n in pairs]
    folded.kerasreg_config = getattr(model, "kerasreg_config", None)
    return folded


def _has_graph(model):
    try:
        return bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        return False


# ---------------------------------------------------------------------------
# Writing an export.
# ---------------------------------------------------------------------------


def _input_spec(model):
    if not _has_graph(model):
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


def _jsonable(value):
    """Plain JSON types; NaN and inf become null (strict JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, pathlib.PurePath):
        return str(value)
    return repr(value)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(root):
    """Relative `/`-separated paths of every file under `root`, except the manifest."""
    root = pathlib.Path(root)
    found = (p for p in root.rglob("*") if p.is_file() or p.is_symlink())
    return sorted(p.relative_to(root).as_posix() for p in found if p.relative_to(root).as_posix() != MANIFEST)


def _manifest_digest(manifest):
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
        "epoch_time_total": float(sum(times)) if times else None,
    }


def _manifest(name, model, config, result, input_shape, dtype, folded):
    import kerasreg

    kerasreg_config = getattr(model, "kerasreg_config", None) or {}
    model_part = {
        "architecture": kerasreg_config.get("model", model.name),
        **{key: kerasreg_config.get(key) for key in (
            "placement", "block", "dropout_scope", "dropout", "dropout_rate", "norm",
            "bn_preset", "api", "options")},
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
        }
    training = None
    if result is not None:
        training = {key: config.get(key) for key in (
            "epochs", "epochs_run", "batch_size", "optimizer", "learning_rate")}
        training["stop_reason"] = result.stop_reason
    return _jsonable({
        "schema": SCHEMA,
        "name": name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "kerasreg": kerasreg.__version__,
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
        },
        "dataset": dataset,
        "training": training,
        "seed": config.get("seed"),
        "metrics": _metrics(result),
        "folded": folded,
        "config": config,
    })


def _fold_and_write(model, path, input_shape, dtype):
    folded = fold_batch_norm(model)
    probe = np.random.default_rng(0).normal(size=(8, *input_shape)).astype(dtype)
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


def _write_export(tmp, name, model, config, result, fold_bn):
    input_shape, dtype = _input_spec(model)
    _write_saved_model(model, tmp / SAVED_MODEL, input_shape, dtype)
    folded = _fold_and_write(model, tmp / SAVED_MODEL_FOLDED, input_shape, dtype) if fold_bn else None
    model.save(tmp / "model.keras")
    if result is not None:
        history = result.history
    else:
        history = getattr(getattr(model, "history", None), "history", None)
    if history:
        _write_history(history, tmp / "history.csv")
    run_dir = getattr(result, "run_dir", None)
    if run_dir is not None:
        for extra in RUN_DIR_EXTRAS:
            source = pathlib.Path(run_dir) / extra
            if source.is_dir():
                shutil.copytree(source, tmp / extra)
            elif source.is_file():
                shutil.copy2(source, tmp / extra)
    manifest = _manifest(name, model, config, result, input_shape, dtype, folded)
    manifest["files"] = {rel: _sha256(tmp / rel) for rel in _files(tmp)}
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n")


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


def export_run(model_or_result, out="saved_models", name=None, *, overwrite=False, fold_bn=False):
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
        _write_export(tmp, name, model, config, result, fold_bn)
        _move_into_place(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# ---------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------


def _read_manifest(path):
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise NotAnExportError(
            f"{path} is not a kerasreg export: it has no {MANIFEST}. An export holds "
            f"{SAVED_MODEL}/, model.keras and {MANIFEST} (see kerasreg.export_run)."
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportIntegrityError(f"{manifest_path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or not str(manifest.get("schema", "")).startswith("kerasreg.export/"):
        raise NotAnExportError(
            f"{manifest_path} is not a kerasreg export manifest (no \"schema\": \"{SCHEMA}\")."
        )
    if manifest["schema"] != SCHEMA:
        raise NotAnExportError(
            f"{manifest_path} has schema {manifest['schema']!r}; this kerasreg reads {SCHEMA!r}. "
            "Upgrade kerasreg to load it."
        )
    return manifest


def verify_export(path):
    """Check every checksum of an export and return its manifest.

    Args:
        path: str or path. The export folder.

    Returns:
        dict. The manifest.

    Raises:
        FileNotFoundError: `path` does not exist.
        NotAnExportError: `path` has no kerasreg manifest.
        ExportIntegrityError: the manifest was edited, or a file is missing,
            changed or not listed; the message names every such file.

    Example:

    >>> verify_export("saved_models/mlp-bn_act_drop-standard0.2-seed0")["schema"]  # doctest: +SKIP
    'kerasreg.export/1'
    """
    path = pathlib.Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"Export {path} does not exist or is not a directory.")
    manifest = _read_manifest(path)
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise ExportIntegrityError(
            f"{path / MANIFEST} was modified after export (its manifest_sha256 does not match "
            "its content). Re-export the run."
        )
    listed = manifest.get("files") or {}
    problems = []
    for rel, digest in sorted(listed.items()):
        file = path / rel
        if not file.is_file():
            problems.append(f"missing file {rel}")
        elif _sha256(file) != digest:
            problems.append(f"changed file {rel} (sha256 mismatch)")
    problems += [f"unlisted file {rel}" for rel in _files(path) if rel not in listed]
    if problems:
        raise ExportIntegrityError(
            f"Export {path} failed verification: {'; '.join(problems)}. Re-export the run."
        )
    return manifest


class Export:
    """A verified export: its manifest, its SavedModel and its Keras model.

    Get one with `kerasreg.load(path)`.

    Training vs inference: `predict` runs the SavedModel, i.e. the model in
    inference mode. For Monte Carlo dropout use
    `kerasreg.predict_mc(export, x)`.

    Attributes:
        path: pathlib.Path. The export folder.
        manifest: dict. The parsed `manifest.json`.

    Example:

    >>> export = kerasreg.load("saved_models/mlp-bn_act_drop-standard0.2-seed0")  # doctest: +SKIP
    >>> export.predict(x).shape  # doctest: +SKIP
    (5, 10)
    """

    def __init__(self, path, manifest):
        self.path = pathlib.Path(path)
        self.manifest = manifest
        self._saved = {}
        self._keras_model = None

    def __repr__(self):
        return f"Export({str(self.path)!r})"

    @property
    def name(self):
        """The export name."""
        return self.manifest["name"]

    @property
    def history(self):
        """Per-epoch history from `history.csv` as a dict of float lists (`{}` when absent)."""
        file = self.path / "history.csv"
        if not file.is_file():
            return {}
        history = read_history(file)
        history.pop("epoch", None)
        return history

    def serving_signature(self, folded=False):
        """The `serving_default` signature of the (folded) SavedModel, loaded once."""
        if folded not in self._saved:
            directory = SAVED_MODEL_FOLDED if folded else SAVED_MODEL
            if not (self.path / directory).is_dir():
                raise FileNotFoundError(
                    f"Export {self.path} has no {directory}/. Export with fold_bn=True to get one."
                )
            loaded = tf.saved_model.load(str(self.path / directory))
            self._saved[folded] = (loaded, loaded.signatures["serving_default"])
        return self._saved[folded][1]

    def predict(self, x, batch_size=1024, *, folded=False):
        """Class probabilities from the SavedModel (inference mode), in batches.

        Args:
            x: array-like of shape `(n, *input_shape)`.
            batch_size: int. Rows per SavedModel call. Defaults to `1024`.
            folded: bool. Use `saved_model_folded/`. Defaults to `False`.

        Returns:
            np.ndarray of shape `(n, num_classes)`.
        """
        fn = self.serving_signature(folded)
        x = np.asarray(x, dtype=self.manifest["input"]["dtype"])
        outputs = [
            fn(**{INPUT_NAME: tf.constant(x[i:i + batch_size])})[OUTPUT_NAME].numpy()
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(outputs) if outputs else np.zeros((0, self.manifest["num_classes"]), "float32")

    def keras_model(self):
        """The Keras model from `model.keras`, loaded with safe mode on (once)."""
        if self._keras_model is None:
            self._keras_model = keras.saving.load_model(self.path / "model.keras", safe_mode=True)
        return self._keras_model


def load(path):
    """Verify an export's checksums, then return it as an `Export`.

    Nothing is loaded from a file before every checksum has been checked;
    the SavedModel and the Keras model are loaded on first use.

    Args:
        path: str or path. The export folder, e.g. `"saved_models/<run>"`.

    Returns:
        `Export` with `.manifest`, `.predict(x)` and `.keras_model()`.

    Raises:
        FileNotFoundError: `path` does not exist.
        NotAnExportError: `path` is not a kerasreg export.
        ExportIntegrityError: a file is missing, changed or unlisted, or the
            manifest was edited; the message names them.

    Example:

    >>> export = kerasreg.load("saved_models/mlp-bn_act_drop-standard0.2-seed0")  # doctest: +SKIP
    >>> export.manifest["metrics"]["test_accuracy"]  # doctest: +SKIP
    0.71
    """
    manifest = verify_export(path)
    return Export(path, manifest)
