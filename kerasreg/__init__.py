"""kerasreg: where should Dropout and BatchNormalization go, measured.

Public names load on first use (PEP 562): `import kerasreg` is light, and
TensorFlow, TFDS and matplotlib are imported by the functions that need them.
kerasreg's Keras classes (`ZooFunctional`, `ZooSequential`, `Uout`) are
registered as soon as Keras is imported, so `keras.saving.load_model("model.keras")`
works after `import kerasreg` as before.

Example:

>>> import kerasreg
>>> model = kerasreg.build_model("mlp", placement="bn_before_act", input_shape=(40,), num_classes=10)
"""

import os as _os
from typing import TYPE_CHECKING

from kerasreg import _backend  # noqa: F401  (must run before Keras is imported)
from kerasreg import _lazy, _quiet
from kerasreg._version import __version__

if TYPE_CHECKING:
    from kerasreg._locks import LockedError
    from kerasreg.analysis.compare import compare_exports
    from kerasreg.analysis.mc_dropout import predict_mc
    from kerasreg.analysis.statistics import PairedComparison, comparison_findings, paired_comparisons
    from kerasreg.data.catalog import dataset_info, list_datasets
    from kerasreg.data.dataset import Dataset
    from kerasreg.data.importing import ImportedDataset, import_dataset
    from kerasreg.data.loading import DatasetNotPreparedError, default_data_dir, load_dataset
    from kerasreg.diagnosis.result import Diagnosis, diagnose
    from kerasreg.diagnosis.move import move_dropout
    from kerasreg.diagnosis.structure import find_structure
    from kerasreg.export.fold_bn import fold_batch_norm
    from kerasreg.export.layout import ExportExistsError, ExportIntegrityError, NotAnExportError
    from kerasreg.export.naming import check_export_target, run_name
    from kerasreg.export.reader import load, verify_export
    from kerasreg.export.writer import export_run
    from kerasreg.models.factory import build_model, describe
    from kerasreg.models.kinds import list_dropout_kinds, list_norm_kinds, register_dropout_kind, register_norm_kind
    from kerasreg.models.placements import Placement, get_placement, list_placements, register_placement
    from kerasreg.models.uout import Uout
    from kerasreg.models.zoo import list_models, model_options, register_model
    from kerasreg.runs.config import RunConfig
    from kerasreg.runs.execute import run
    from kerasreg.study.config import StudyConfig
    from kerasreg.study.runner import run_study
    from kerasreg.training.checkpoint import CheckpointError
    from kerasreg.training.early_stopping import GapEarlyStopping, ResumableEarlyStopping
    from kerasreg.training.gap import OverfittingGap
    from kerasreg.training.reestimate import reestimate_batch_norm
    from kerasreg.training.run_dir import ResumeMismatchError
    from kerasreg.training.trainer import RunResult, TrainingFailed, seed_everything, train
    from kerasreg.training.variance_shift import VarianceShiftMonitor
    from kerasreg.tuning.config import TuneConfig
    from kerasreg.tuning.hypermodel import PlacementHyperModel
    from kerasreg.tuning.runner import tune

__getattr__, __dir__, __all__ = _lazy.attach_typed(__name__, __file__)
__all__ = ["__version__", *__all__]
_lazy.register_keras_classes()
if _os.environ.get(_quiet.ENV):  # a process started by the `kerasreg` command
    _quiet.install()
