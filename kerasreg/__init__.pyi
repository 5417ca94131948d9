"""Public names of `kerasreg`: kerasreg: where should Dropout and BatchNormalization go, measured.

The one list of what the package exports: type checkers read it, and
`kerasreg._lazy.attach_stub` turns it into names loaded on first use.
"""

from kerasreg._version import __version__ as __version__
from kerasreg._locks import LockedError as LockedError
from kerasreg.analysis.compare import compare_exports as compare_exports
from kerasreg.analysis.mc_dropout import predict_mc as predict_mc
from kerasreg.analysis.statistics import (
    PairedComparison as PairedComparison,
    comparison_findings as comparison_findings,
    paired_comparisons as paired_comparisons,
)
from kerasreg.data.catalog import dataset_info as dataset_info, list_datasets as list_datasets
from kerasreg.data.dataset import Dataset as Dataset
from kerasreg.data.importing import ImportedDataset as ImportedDataset, import_dataset as import_dataset
from kerasreg.data.loading import (
    DatasetDamagedError as DatasetDamagedError,
    DatasetNotPreparedError as DatasetNotPreparedError,
    default_data_dir as default_data_dir,
    load_dataset as load_dataset,
)
from kerasreg.diagnosis.batch_norm_audit import (
    BatchNormFinding as BatchNormFinding,
    audit_batch_norm as audit_batch_norm,
)
from kerasreg.diagnosis.result import Diagnosis as Diagnosis, diagnose as diagnose
from kerasreg.diagnosis.move import move_dropout as move_dropout
from kerasreg.diagnosis.structure import find_structure as find_structure
from kerasreg.export.fold_bn import fold_batch_norm as fold_batch_norm
from kerasreg.export.graph_ops import UnsafeSavedModelError as UnsafeSavedModelError
from kerasreg.export.layout import (
    ExportExistsError as ExportExistsError,
    ExportIntegrityError as ExportIntegrityError,
    NotAnExportError as NotAnExportError,
)
from kerasreg.export.naming import check_export_target as check_export_target, run_name as run_name
from kerasreg.export.reader import load as load, verify_export as verify_export
from kerasreg.export.writer import export_run as export_run
from kerasreg.models.factory import build_model as build_model, describe as describe
from kerasreg.models.kinds import (
    list_dropout_kinds as list_dropout_kinds,
    list_norm_kinds as list_norm_kinds,
    register_dropout_kind as register_dropout_kind,
    register_norm_kind as register_norm_kind,
)
from kerasreg.models.placements import (
    Placement as Placement,
    get_placement as get_placement,
    list_placements as list_placements,
    register_placement as register_placement,
)
from kerasreg.models.uout import Uout as Uout
from kerasreg.models.zoo import (
    list_models as list_models,
    model_options as model_options,
    register_model as register_model,
)
from kerasreg.runs.config import RunConfig as RunConfig
from kerasreg.runs.execute import run as run
from kerasreg.study.config import StudyConfig as StudyConfig
from kerasreg.study.runner import run_study as run_study
from kerasreg.training.batch_norm_swap import set_batch_norm as set_batch_norm
from kerasreg.training.checkpoint import CheckpointError as CheckpointError
from kerasreg.training.early_stopping import (
    GapEarlyStopping as GapEarlyStopping,
    ResumableEarlyStopping as ResumableEarlyStopping,
)
from kerasreg.training.gap import OverfittingGap as OverfittingGap
from kerasreg.training.reestimate import reestimate_batch_norm as reestimate_batch_norm
from kerasreg.training.run_dir import ResumeMismatchError as ResumeMismatchError
from kerasreg.training.trainer import (
    RunResult as RunResult,
    TrainingFailed as TrainingFailed,
    seed_everything as seed_everything,
    train as train,
)
from kerasreg.training.variance_shift import VarianceShiftMonitor as VarianceShiftMonitor
from kerasreg.tuning.config import TuneConfig as TuneConfig
from kerasreg.tuning.hypermodel import PlacementHyperModel as PlacementHyperModel
from kerasreg.tuning.runner import tune as tune
