"""Exports: every run as a TensorFlow SavedModel + `.keras` + checksummed manifest, and verified loading.

Names load on first use: the file-name constants and errors of `layout`
import nothing heavy; writing and loading import TensorFlow.

Example:

>>> import kerasreg
>>> export = kerasreg.load("saved_models/mlp-bn_act_drop-standard0.2-seed0")  # doctest: +SKIP
"""

from kerasreg import _lazy

# Each public name and the module that defines it, imported on first use.
__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "kerasreg.export.fold_bn": ["fold_batch_norm"],
    "kerasreg.export.layout": [
        "INPUT_NAME",
        "MANIFEST",
        "OUTPUT_NAME",
        "SAVED_MODEL",
        "SAVED_MODEL_FOLDED",
        "SCHEMA",
        "ExportExistsError",
        "ExportIntegrityError",
        "NotAnExportError",
    ],
    "kerasreg.export.naming": ["check_export_target", "run_name"],
    "kerasreg.export.reader": ["Export", "load", "verify_export"],
    "kerasreg.export.writer": ["export_run"],
})
