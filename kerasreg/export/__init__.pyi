"""Public names of `kerasreg.export`: exports: every run as a TensorFlow SavedModel + `.keras` + checksummed manifest, and verified loading.

The one list of what the package exports: type checkers read it, and
`kerasreg._lazy.attach_stub` turns it into names loaded on first use.
"""

from kerasreg.export.fold_bn import fold_batch_norm as fold_batch_norm
from kerasreg.export.graph_ops import UnsafeSavedModelError as UnsafeSavedModelError
from kerasreg.export.layout import (
    INPUT_NAME as INPUT_NAME,
    MANIFEST as MANIFEST,
    OUTPUT_NAME as OUTPUT_NAME,
    SAVED_MODEL as SAVED_MODEL,
    SAVED_MODEL_FOLDED as SAVED_MODEL_FOLDED,
    SCHEMA as SCHEMA,
    ExportExistsError as ExportExistsError,
    ExportIntegrityError as ExportIntegrityError,
    NotAnExportError as NotAnExportError,
)
from kerasreg.export.naming import check_export_target as check_export_target, run_name as run_name
from kerasreg.export.reader import Export as Export, load as load, verify_export as verify_export
from kerasreg.export.writer import export_run as export_run
