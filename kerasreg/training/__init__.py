"""Training: `train`, the callbacks that measure overfitting, and the run directory.

Names load on first use.

Example:

>>> import kerasreg
>>> data = kerasreg.load_dataset("mnist1d")
>>> model = kerasreg.build_model("mlp", input_shape=data.input_shape, num_classes=10, seed=0)
>>> result = kerasreg.train(model, data, epochs=2, verbose=0)  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from kerasreg import _lazy

if TYPE_CHECKING:
    from kerasreg.training.checkpoint import CheckpointError
    from kerasreg.training.early_stopping import GapEarlyStopping, ResumableEarlyStopping
    from kerasreg.training.evaluator import Evaluator
    from kerasreg.training.gap import OverfittingGap
    from kerasreg.training.reestimate import copy_model, reestimate_batch_norm, reestimation_metrics, variance_shift_max
    from kerasreg.training.run_dir import ResumeMismatchError, RunDir, read_history
    from kerasreg.training.trainer import (
        GAP_KEYS,
        RunResult,
        TrainingFailed,
        make_optimizer,
        seed_everything,
        train,
    )
    from kerasreg.training.variance_shift import VarianceShiftMonitor, batch_norm_layers

__getattr__, __dir__, __all__ = _lazy.attach_typed(__name__, __file__)
