"""kerasreg: where should Dropout and BatchNormalization go, measured.

Example:

>>> import kerasreg
>>> model = kerasreg.build_model("mlp", placement="bn_before_act", input_shape=(40,), num_classes=10)
"""

from kerasreg import _backend  # noqa: F401  (must run before Keras is imported)

__version__ = "0.1.0"

from kerasreg.placements import Placement, get_placement, list_placements, register_placement
from kerasreg.layers import (
    Uout,
    list_dropout_kinds,
    list_norm_kinds,
    register_dropout_kind,
    register_norm_kind,
)
from kerasreg.zoo import list_models, model_options, register_model
from kerasreg.factory import build_model, describe
from kerasreg.data import Dataset, DatasetNotPreparedError, dataset_info, default_data_dir, list_datasets, load_dataset
from kerasreg.callbacks import OverfittingGap, GapEarlyStopping, VarianceShiftMonitor
from kerasreg.training import RunResult, TrainingFailed, seed_everything, train
from kerasreg.export import (
    ExportExistsError,
    ExportIntegrityError,
    NotAnExportError,
    check_export_target,
    export_run,
    fold_batch_norm,
    load,
    run_name,
    verify_export,
)
from kerasreg.compare import compare_exports
from kerasreg.mc_dropout import predict_mc
from kerasreg.runs import RunConfig, run
from kerasreg.study import StudyConfig, run_study
