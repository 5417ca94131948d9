"""Exports: every run as a TensorFlow SavedModel + `.keras` + checksummed manifest, and verified loading.

Names load on first use: the file-name constants and errors of `layout`
import nothing heavy; writing and loading import TensorFlow.

Example:

>>> import kerasreg
>>> export = kerasreg.load("saved_models/mlp-bn_act_drop-standard0.2-seed0")  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from kerasreg import _lazy

if TYPE_CHECKING:
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

__getattr__, __dir__, __all__ = _lazy.attach_typed(__name__, __file__)
