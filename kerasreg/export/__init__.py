"""Exports: every run as a TensorFlow SavedModel + `.keras` + checksummed manifest, and verified loading.

Example:

>>> import kerasreg
>>> export = kerasreg.load("saved_models/mlp-bn_act_drop-standard0.2-seed0")  # doctest: +SKIP
"""

from kerasreg.export.fold_bn import fold_batch_norm
from kerasreg.export.layout import (
    INPUT_NAME,
    MANIFEST,
    OUTPUT_NAME,
    SAVED_MODEL,
    SAVED_MODEL_FOLDED,
    SCHEMA,
    ExportExistsError,
    ExportIntegrityError,
    NotAnExportError,
)
from kerasreg.export.naming import check_export_target, run_name
from kerasreg.export.reader import Export, load, verify_export
from kerasreg.export.writer import export_run

__all__ = [
    "INPUT_NAME",
    "MANIFEST",
    "OUTPUT_NAME",
    "SAVED_MODEL",
    "SAVED_MODEL_FOLDED",
    "SCHEMA",
    "Export",
    "ExportExistsError",
    "ExportIntegrityError",
    "NotAnExportError",
    "check_export_target",
    "export_run",
    "fold_batch_norm",
    "load",
    "run_name",
    "verify_export",
]
