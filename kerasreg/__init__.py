"""kerasreg: where should Dropout and BatchNormalization go, measured.

Public names load on first use (PEP 562, from the table below): `import
kerasreg` is light, and TensorFlow, TFDS and matplotlib are imported by the
functions that need them. The only thing `import kerasreg` changes in the
process is `KERAS_BACKEND`, set to `jax` when the user chose no backend.

kerasreg's Keras classes (`ZooFunctional`, `ZooSequential`, `Uout`) are
registered with Keras when kerasreg's model code loads: at `import kerasreg`
if Keras is already imported, else at the first kerasreg call that builds or
loads a model. `keras.saving.load_model("model.keras")` finds them from then
on (in a fresh process, `import keras, kerasreg` in that order is enough).

Example:

>>> import kerasreg
>>> model = kerasreg.build_model("mlp", placement="bn_before_act", input_shape=(40,), num_classes=10)
"""

import sys as _sys

from kerasreg import _backend  # noqa: F401  (must run before Keras is imported)
from kerasreg import _lazy
from kerasreg._version import __version__

# Each public name and the module that defines it, imported on first use.
__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "kerasreg._locks": ["LockedError"],
    "kerasreg.analysis.compare": ["compare_exports"],
    "kerasreg.analysis.mc_dropout": ["predict_mc"],
    "kerasreg.analysis.statistics": ["PairedComparison", "comparison_findings", "paired_comparisons"],
    "kerasreg.data.catalog": ["dataset_info", "list_datasets"],
    "kerasreg.data.dataset": ["Dataset"],
    "kerasreg.data.importing": ["ImportedDataset", "import_dataset"],
    "kerasreg.data.loading": ["DatasetNotPreparedError", "default_data_dir", "load_dataset"],
    "kerasreg.diagnosis.result": ["Diagnosis", "diagnose"],
    "kerasreg.diagnosis.move": ["move_dropout"],
    "kerasreg.diagnosis.structure": ["find_structure"],
    "kerasreg.export.fold_bn": ["fold_batch_norm"],
    "kerasreg.export.layout": ["ExportExistsError", "ExportIntegrityError", "NotAnExportError"],
    "kerasreg.export.naming": ["check_export_target", "run_name"],
    "kerasreg.export.reader": ["load", "verify_export"],
    "kerasreg.export.writer": ["export_run"],
    "kerasreg.models.factory": ["build_model", "describe"],
    "kerasreg.models.kinds": ["list_dropout_kinds", "list_norm_kinds", "register_dropout_kind", "register_norm_kind"],
    "kerasreg.models.placements": ["Placement", "get_placement", "list_placements", "register_placement"],
    "kerasreg.models.uout": ["Uout"],
    "kerasreg.models.zoo": ["list_models", "model_options", "register_model"],
    "kerasreg.runs.config": ["RunConfig"],
    "kerasreg.runs.execute": ["run"],
    "kerasreg.study.config": ["StudyConfig"],
    "kerasreg.study.runner": ["run_study"],
    "kerasreg.training.checkpoint": ["CheckpointError"],
    "kerasreg.training.early_stopping": ["GapEarlyStopping", "ResumableEarlyStopping"],
    "kerasreg.training.gap": ["OverfittingGap"],
    "kerasreg.training.reestimate": ["reestimate_batch_norm"],
    "kerasreg.training.run_dir": ["ResumeMismatchError"],
    "kerasreg.training.trainer": ["RunResult", "TrainingFailed", "seed_everything", "train"],
    "kerasreg.training.variance_shift": ["VarianceShiftMonitor"],
    "kerasreg.tuning.config": ["TuneConfig"],
    "kerasreg.tuning.hypermodel": ["PlacementHyperModel"],
    "kerasreg.tuning.runner": ["tune"],
})
__all__ = ["__version__", *__all__]
if "keras" in _sys.modules:
    from kerasreg.models import factory as _factory  # noqa: F401  (registers the Keras classes)
