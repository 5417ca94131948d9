"""Public names of `kerasreg.training`: training: `train`, the callbacks that measure overfitting, and the run directory.

The one list of what the package exports: type checkers read it, and
`kerasreg._lazy.attach_stub` turns it into names loaded on first use.
"""

from kerasreg.training.batch_norm_swap import set_batch_norm as set_batch_norm
from kerasreg.training.checkpoint import CheckpointError as CheckpointError
from kerasreg.training.early_stopping import (
    GapEarlyStopping as GapEarlyStopping,
    ResumableEarlyStopping as ResumableEarlyStopping,
)
from kerasreg.training.evaluator import Evaluator as Evaluator
from kerasreg.training.gap import OverfittingGap as OverfittingGap
from kerasreg.training.reestimate import (
    copy_model as copy_model,
    reestimate_batch_norm as reestimate_batch_norm,
    reestimation_metrics as reestimation_metrics,
    variance_shift_max as variance_shift_max,
)
from kerasreg.training.run_dir import (
    ResumeMismatchError as ResumeMismatchError,
    RunDir as RunDir,
    read_history as read_history,
)
from kerasreg.training.trainer import (
    GAP_KEYS as GAP_KEYS,
    RunResult as RunResult,
    TrainingFailed as TrainingFailed,
    make_optimizer as make_optimizer,
    seed_everything as seed_everything,
    train as train,
)
from kerasreg.training.variance_shift import (
    VarianceShiftMonitor as VarianceShiftMonitor,
    batch_norm_layers as batch_norm_layers,
)
