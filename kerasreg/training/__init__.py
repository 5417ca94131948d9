"""Training: `train`, the callbacks that measure overfitting, and the run directory.

Names load on first use.

Example:

>>> import kerasreg
>>> data = kerasreg.load_dataset("mnist1d")
>>> model = kerasreg.build_model("mlp", input_shape=data.input_shape, num_classes=10, seed=0)
>>> result = kerasreg.train(model, data, epochs=2, verbose=0)  # doctest: +SKIP
"""

from kerasreg import _lazy

# Each public name and the module that defines it, imported on first use.
__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "kerasreg.training.checkpoint": ["CheckpointError"],
    "kerasreg.training.early_stopping": ["GapEarlyStopping", "ResumableEarlyStopping"],
    "kerasreg.training.evaluator": ["Evaluator"],
    "kerasreg.training.gap": ["OverfittingGap"],
    "kerasreg.training.reestimate": [
        "copy_model",
        "reestimate_batch_norm",
        "reestimation_metrics",
        "variance_shift_max",
    ],
    "kerasreg.training.run_dir": ["ResumeMismatchError", "RunDir", "read_history"],
    "kerasreg.training.trainer": [
        "GAP_KEYS",
        "RunResult",
        "TrainingFailed",
        "make_optimizer",
        "seed_everything",
        "train",
    ],
    "kerasreg.training.variance_shift": ["VarianceShiftMonitor", "batch_norm_layers"],
})
