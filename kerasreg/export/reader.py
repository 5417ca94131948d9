"""Reading an export back: verify every checksum first, then load lazily."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasreg.export.graph_ops import check_saved_model
from kerasreg.export.layout import (
    HISTORY,
    INPUT_NAME,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    MODEL_FILE,
    OUTPUT_NAME,
    SAVED_MODEL,
    SAVED_MODEL_FOLDED,
    SCHEMA,
    ExportIntegrityError,
    NotAnExportError,
    manifest_digest,
    manifest_problems,
    parse_manifest,
    sha256,
    walk_export,
)
from kerasreg.models import factory as _factory  # noqa: F401  (registers kerasreg's Keras classes for load_model)
from kerasreg.training import read_history


def _read_manifest(path):
    manifest_path = path / MANIFEST
    if manifest_path.is_symlink():
        raise ExportIntegrityError(f"{manifest_path} is a symlink; an export's files must be inside it.")
    if not manifest_path.is_file():
        raise NotAnExportError(
            f"{path} is not a kerasreg export: it has no {MANIFEST}. An export holds "
            f"{SAVED_MODEL}/, model.keras and {MANIFEST} (see kerasreg.export_run)."
        )
    size = manifest_path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise ExportIntegrityError(
            f"{manifest_path} is {size} bytes, more than a manifest can be ({MAX_MANIFEST_BYTES} bytes)."
        )
    try:
        manifest = parse_manifest(manifest_path.read_bytes().decode("utf-8"))
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


def verify_export(path: str | os.PathLike) -> dict[str, Any]:
    """Check every checksum of an export and the ops of its SavedModels, and return its manifest.

    Verification proves that the files are the ones the manifest lists and
    that the SavedModels hold only inference ops; it does not prove who made
    the export (the checksums are not a signature), and `model.keras` is
    loaded later with Keras's safe mode on.

    Args:
        path: str or path. The export folder.

    Returns:
        dict. The manifest.

    Raises:
        FileNotFoundError: `path` does not exist.
        NotAnExportError: `path` has no kerasreg manifest.
        ExportIntegrityError: the manifest is malformed (wrong types, NaN,
            too deep, too large, a path that is absolute, not normalised or
            leaves the export), was edited, the export holds a symlink, or a
            file is missing, changed or not listed; the message names every
            such problem. No file outside the export is ever opened, so the
            message never depends on one.
        UnsafeSavedModelError: a SavedModel of the export holds an op outside
            `kerasreg.export.graph_ops.INFERENCE_OPS` (one that could read or
            write files, use the network or start processes); nothing of it
            was run.

    Example:

    >>> verify_export("saved_models/mlp-bn_act_drop-standard0.2-seed0")["schema"]  # doctest: +SKIP
    'kerasreg.export/1'
    """
    path = pathlib.Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"Export {path} does not exist or is not a directory.")
    manifest = _read_manifest(path)
    malformed = manifest_problems(manifest)
    if malformed:
        raise ExportIntegrityError(f"{path / MANIFEST} is malformed: {'; '.join(malformed)}.")
    if manifest["manifest_sha256"] != manifest_digest(manifest):
        raise ExportIntegrityError(
            f"{path / MANIFEST} was modified after export (its manifest_sha256 does not match "
            "its content). Re-export the run."
        )
    present, links = walk_export(path)
    if links:
        raise ExportIntegrityError(
            f"Export {path} contains symlinks ({', '.join(links)}); exports are refused with any, "
            "since they could point outside the export."
        )
    listed = manifest["files"]
    problems = []
    # Paths were checked to be normalised and relative, and no symlink exists: every file is inside.
    for rel, digest in sorted(listed.items()):
        file = path / rel
        if not file.is_file():
            problems.append(f"missing file {rel}")
        elif sha256(file) != digest:
            problems.append(f"changed file {rel} (sha256 mismatch)")
    problems += [f"unlisted file {rel}" for rel in present if rel not in listed]
    if problems:
        raise ExportIntegrityError(
            f"Export {path} failed verification: {'; '.join(problems)}. Re-export the run."
        )
    for directory in (SAVED_MODEL, SAVED_MODEL_FOLDED):
        if (path / directory).is_dir():
            check_saved_model(path / directory)
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
        file = self.path / HISTORY
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
            self._keras_model = keras.saving.load_model(self.path / MODEL_FILE, safe_mode=True)
        return self._keras_model


def load(path: str | os.PathLike) -> Export:
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
