"""kerasreg: where should Dropout and BatchNormalization go, measured.

Example:

>>> import kerasreg
>>> model = kerasreg.build_model("mlp", placement="bn_before_act", input_shape=(40,), num_classes=10)
"""

from kerasreg import _backend  # noqa: F401  (must run before Keras is imported)

__version__ = "0.1.0"

from kerasreg.models import (
    Placement,
    Uout,
    build_model,
    describe,
    get_placement,
    list_dropout_kinds,
    list_models,
    list_norm_kinds,
    list_placements,
    model_options,
    register_dropout_kind,
    register_model,
    register_norm_kind,
    register_placement,
)
from kerasreg.data import Dataset, DatasetNotPreparedError, dataset_info, default_data_dir, list_datasets, load_dataset
from kerasreg.training import (
    GapEarlyStopping,
    OverfittingGap,
    RunResult,
    TrainingFailed,
    VarianceShiftMonitor,
    seed_everything,
    train,
)
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
from kerasreg.analysis import compare_exports, predict_mc
from kerasreg.runs import RunConfig, run
from kerasreg.study import StudyConfig, run_study

_backend.verify()
