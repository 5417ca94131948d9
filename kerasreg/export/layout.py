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
- `serving`: `signatures`, `input` and `output` key names of the SavedModel.
- `dataset`: `name`, `validation_split`, `split_seed`, `standardize`, or
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
import pathlib

SCHEMA = "kerasreg.export/1"
SAVED_MODEL = "saved_model"
SAVED_MODEL_FOLDED = "saved_model_folded"
MANIFEST = "manifest.json"
MODEL_FILE = "model.keras"
HISTORY = "history.csv"
INPUT_NAME = "inputs"
OUTPUT_NAME = "output_0"
RUN_DIR_EXTRAS = ("gaps.jsonl", "variance_shift.jsonl", "logs")


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
