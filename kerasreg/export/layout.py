"""The export layout: file names, schema and checksums shared by the writer and the reader.

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
- `serving`: `signatures`, `input` and `output` key names of the SavedModel; `checked`: `examples` and
  `max_abs_diff` of the check that the SavedModel gives the trained model's outputs on seeded sample inputs.
- `dataset`: `name`, `validation_split`, `split_seed`, `standardize`,
  `source_sha256` (an imported dataset's source fingerprint, else `null`), or
  `null`. `kerasreg.load_dataset(name, validation_split=..., seed=split_seed)`
  reproduces the splits the run used.
- `training`: epochs, epochs run, batch size, optimizer, learning rate,
  stop reason, or `null`; `seed`: the training seed (else the model's seed).
- `metrics`: `val_accuracy`, `val_loss`, `test_accuracy`, `test_loss`, final
  `clean_gap_accuracy`, `clean_gap_loss`, `reported_gap_accuracy`,
  `reported_gap_loss`, `variance_shift_max` (null without BatchNormalization),
  `epochs_run`, `best_epoch` (1-based epoch of the exported weights: the
  restored best epoch under early stopping), `epoch_time_total` (seconds); with BatchNormalization and when
  measured, `test_accuracy_reestimated` and `variance_shift_reestimated` (a
  copy with BN statistics re-estimated on the train split, dropout off; the
  exported model itself is the trained one); `null` for a bare model.
- `folded`: `null`, or `path`, the folded (`weight`, `norm`) layer `pairs` and
  the largest output difference measured at export time (`max_abs_diff`).
- `config`: the full run configuration as recorded by `train()`.
- `files`: sha256 of every file in the export except `manifest.json`,
  keyed by its `/`-separated relative path.
- `manifest_sha256`: sha256 of the manifest's canonical JSON without this
  key, so an edited manifest is detected too. These checksums catch
  corruption and accidental edits; they are not a signature.
"""

import hashlib
import json
import os
import pathlib
import re

SCHEMA = "kerasreg.export/1"
SAVED_MODEL = "saved_model"
SAVED_MODEL_FOLDED = "saved_model_folded"
MANIFEST = "manifest.json"
MODEL_FILE = "model.keras"
HISTORY = "history.csv"
INPUT_NAME = "inputs"
OUTPUT_NAME = "output_0"
RUN_DIR_EXTRAS = ("gaps.jsonl", "variance_shift.jsonl", "logs")
MAX_MANIFEST_BYTES = 16 << 20
MAX_MANIFEST_DEPTH = 32
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Field: (accepted types, whether null is allowed). Only what readers index into is typed.
_FIELD_TYPES = {
    "name": (str, False),
    "files": (dict, False),
    "manifest_sha256": (str, False),
    "input": (dict, False),
    "num_classes": (int, False),
    "model": (dict, True),
    "metrics": (dict, True),
    "dataset": (dict, True),
    "training": (dict, True),
    "config": (dict, True),
    "folded": (dict, True),
}


class ExportExistsError(FileExistsError):
    """The export folder already exists and `overwrite` was not given."""


class ExportIntegrityError(ValueError):
    """A file of an export is missing, changed, unlisted, or its manifest was edited."""


class NotAnExportError(ValueError):
    """The folder is not a kerasreg export (it has no readable `manifest.json`)."""


def sha256(path):
    """Hex sha256 of a file, read in 1 MiB chunks.

    Example:

    >>> len(sha256(__file__))
    64
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def files(root):
    """Relative `/`-separated paths of every file under `root`, except the manifest.

    Example:

    >>> files("/nonexistent")
    []
    """
    root = pathlib.Path(root)
    found = (p for p in root.rglob("*") if p.is_file() or p.is_symlink())
    return sorted(p.relative_to(root).as_posix() for p in found if p.relative_to(root).as_posix() != MANIFEST)


def manifest_digest(manifest):
    """sha256 of the manifest's canonical JSON without its own `manifest_sha256` key.

    Example:

    >>> len(manifest_digest({"schema": SCHEMA}))
    64
    """
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _depth(value, limit):
    """Nesting depth of JSON containers, counted iteratively (a deep manifest must not overflow the stack)."""
    stack, deepest = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def parse_manifest(text):
    """Parse manifest JSON strictly: no NaN or Infinity, nesting at most `MAX_MANIFEST_DEPTH`.

    Raises `ValueError` naming the problem.

    Example:

    >>> parse_manifest('{"schema": "kerasreg.export/1"}')["schema"]
    'kerasreg.export/1'
    """
    try:
        manifest = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_MANIFEST_DEPTH} levels") from None
    if _depth(manifest, MAX_MANIFEST_DEPTH) > MAX_MANIFEST_DEPTH:
        raise ValueError(f"nested deeper than {MAX_MANIFEST_DEPTH} levels")
    return manifest


def check_relative_path(rel):
    """The problem with a manifest file key, or None if it is a plain relative path inside the export.

    Example:

    >>> check_relative_path("saved_model/saved_model.pb") is None
    True
    >>> check_relative_path("../secret")
    "path '../secret' leaves the export"
    """
    if not isinstance(rel, str) or not rel or "\0" in rel or "\\" in rel:
        return f"path {rel!r} is not a plain relative path"
    parts = rel.split("/")
    if rel.startswith("/") or ".." in parts:
        return f"path {rel!r} leaves the export"
    if any(part in ("", ".") for part in parts) or rel == MANIFEST:
        return f"path {rel!r} is not normalised"
    return None


def manifest_problems(manifest):
    """Every structural problem of a parsed manifest, as short messages (empty when well-formed).

    Checked before any listed file is touched: field types, that every
    `files` key is a normalised relative path inside the export and every
    value a sha256, and that numbers are finite.

    Example:

    >>> manifest_problems({"name": 3})[0]
    "field 'name' must be str, not int"
    """
    problems = []
    for field, (kind, nullable) in _FIELD_TYPES.items():
        value = manifest.get(field)
        if value is None and nullable:
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            problems.append(f"field {field!r} must be {kind.__name__}, not {type(value).__name__}")
    files_ = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    for rel, digest in files_.items():
        problem = check_relative_path(rel)
        if problem is None and not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            problem = f"checksum of {rel!r} is not a sha256 hex digest"
        if problem:
            problems.append(problem)
    spec = manifest.get("input") if isinstance(manifest.get("input"), dict) else {}
    shape, dtype = spec.get("shape"), spec.get("dtype")
    if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                            for d in shape)):
        problems.append(f"input.shape must be a list of positive ints, not {shape!r}"[:200])
    if dtype not in ("float16", "float32", "float64", "bfloat16", "uint8", "int32", "int64"):
        problems.append(f"input.dtype {dtype!r} is not a known dtype"[:200])
    if isinstance(manifest.get("num_classes"), int) and manifest["num_classes"] < 1:
        problems.append("num_classes must be positive")
    return problems


def walk_export(root):
    """Relative paths of every entry under `root` and the subset that are symlinks, without following any.

    Example:

    >>> walk_export("/nonexistent")
    ([], [])
    """
    root = pathlib.Path(root)
    entries, links = [], []
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = pathlib.Path(directory) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                links.append(rel)
            elif name in filenames and rel != MANIFEST:
                entries.append(rel)
    return sorted(entries), sorted(links)
