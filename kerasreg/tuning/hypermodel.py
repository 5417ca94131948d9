"""`PlacementHyperModel`: placements, kinds, rates and architecture options as KerasTuner hyperparameters.

Any KerasTuner tuner searches it (`RandomSearch`, `BayesianOptimization`,
`Hyperband`); every trial trains through `kerasreg.train`, so its logs
carry the clean and reported gaps and the BatchNorm variance shift, and the
objective may be one of them.

Needs KerasTuner: `pip install "kerasreg[tune]"`.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

try:
    import keras_tuner
except ImportError:  # pragma: no cover - exercised only without the extra installed
    raise ImportError('Tuning needs KerasTuner. Install it with: pip install "kerasreg[tune]"') from None

import keras

from kerasreg import _checks
from kerasreg._files import write_atomic
from kerasreg._json import jsonable
from kerasreg.models import build_model
from kerasreg.training import ResumableEarlyStopping, RunDir, train
from kerasreg.training import defaults as training
from kerasreg.training.checkpoint import is_resumable
from kerasreg.tuning import defaults
from kerasreg.tuning.config import OBJECTIVES
from kerasreg.tuning.resumable import make_resumable
from kerasreg.tuning.space import search_space

if TYPE_CHECKING:
    from kerasreg.data import Dataset

RESULT_FILE = "result.json"


def get_objective(objective: str | keras_tuner.Objective) -> keras_tuner.Objective:
    """A `keras_tuner.Objective` for a metric every trial logs; other names raise, listing the valid ones.

    Gaps are minimised, accuracy maximised, losses minimised. Test metrics
    are never objectives: they are measured once, after training, and never
    used for selection.

    Example:

    >>> get_objective("clean_gap_accuracy").direction
    'min'
    """
    name = objective.name if isinstance(objective, keras_tuner.Objective) else objective
    _checks.one_of(name, tuple(OBJECTIVES), "objective")
    if isinstance(objective, keras_tuner.Objective):
        return objective
    return keras_tuner.Objective(name, OBJECTIVES[name])


def _objective_of(callbacks):
    """The tuner's objective, which KerasTuner hands to the trial on its best-epoch checkpoint callback."""
    return next((c.objective for c in callbacks if isinstance(getattr(c, "objective", None), keras_tuner.Objective)),
                None)


def trial_metrics(result):
    """What a trial reports to the oracle: validation metrics, gaps and variance shift of the returned weights."""
    metrics = {"val_accuracy": result.val_metrics["accuracy"], "val_loss": result.val_metrics["loss"],
               **result.gaps}
    if result.variance_shift_max is not None:
        metrics["variance_shift_max"] = result.variance_shift_max
    return {key: float(value) for key, value in metrics.items()}


def write_result(result, run_dir):
    """Record a finished trial's `RunResult` (without the model) in `run_dir/result.json`, atomically."""
    fields = {
        "config": result.config, "history": result.history, "val_metrics": result.val_metrics,
        "test_metrics": result.test_metrics, "gaps": result.gaps, "epoch_times": result.epoch_times,
        "stop_reason": result.stop_reason, "reestimated": result.reestimated,
    }
    text = json.dumps(jsonable(fields), indent=1)
    write_atomic(pathlib.Path(run_dir) / RESULT_FILE, text + "\n")


class PlacementHyperModel(keras_tuner.HyperModel):
    """A KerasTuner hypermodel whose hyperparameters are kerasreg's placement axes.

    Training vs inference: each trial trains through `kerasreg.train`, which
    re-evaluates a fixed training subset in inference mode every epoch, so
    the trial's logs hold `clean_gap_*` (like compared with like), the
    `reported_gap_*` Keras's running training-mode means suggest and, with
    BatchNormalization, `variance_shift_max`. The objective can be any of
    `val_accuracy`, `val_loss` or a gap, e.g.
    `keras_tuner.Objective("clean_gap_accuracy", "min")`. A trial keeps the
    weights of its best epoch by the objective, so the score KerasTuner
    records, the returned metrics and the trained model agree.

    Args:
        architecture: str. A registered architecture, see `list_models()`.
        input_shape: tuple of int. Input shape without the batch axis.
        num_classes: int. Classes of the softmax head.
        seed: int. Seeds every trial's initialisation, data order and
            dropout noise: a trial's result depends only on its
            hyperparameters. Defaults to `0`.
        **space: the search space: `placements`, `rates` (searched only
            for placements that use dropout), `dropouts`, `norms`,
            `bn_presets` and `options`, each as in `search_space` and
            defaulting as there.

    Example:

    >>> import keras_tuner, kerasreg
    >>> data = kerasreg.load_dataset("mnist1d")
    >>> hypermodel = kerasreg.tuning.PlacementHyperModel(
    ...     "mlp", input_shape=data.input_shape, num_classes=data.num_classes,
    ...     placements=["bn_before_act", "bn_act_drop"], rates=[0.1, 0.3])
    >>> tuner = keras_tuner.RandomSearch(hypermodel, objective=keras_tuner.Objective("clean_gap_accuracy", "min"),
    ...                                  max_trials=2, directory="/tmp/kt", overwrite=True)  # doctest: +SKIP
    >>> tuner.search(data, epochs=3)  # doctest: +SKIP
    """

    def __init__(
        self,
        architecture: str,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        seed: int = 0,
        **space: Any,
    ) -> None:
        super().__init__(name=f"kerasreg_{architecture}", tunable=True)
        self.space = search_space(architecture, **space)
        self.architecture = architecture
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.seed = _checks.seed(seed)
        self.space.check(self.input_shape, num_classes)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Build the zoo model of the trial's hyperparameters (declaring them on first use)."""
        return build_model(self.architecture, input_shape=self.input_shape, num_classes=self.num_classes,
                           seed=self.seed, **self.space.declare(hp))

    def fit(
        self,
        hp: keras_tuner.HyperParameters,
        model: keras.Model,
        dataset: Dataset,
        *,
        epochs: int = defaults.EPOCHS,
        batch_size: int = training.BATCH_SIZE,
        optimizer: str = training.OPTIMIZER,
        learning_rate: float = training.LEARNING_RATE,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        initial_epoch: int = 0,
        objective: str | keras_tuner.Objective | None = None,
        run_dir: str | os.PathLike | None = None,
        verbose: Any = 0,
        **kwargs: Any,
    ) -> dict:
        """Train one trial with `kerasreg.train`; returns the metrics of the weights it keeps.

        Args:
            hp: the trial's hyperparameters.
            model: the model `build(hp)` returned.
            dataset: `kerasreg.data.Dataset`. What `tuner.search(dataset, ...)` was given.
            epochs: int. Epochs of the trial (Hyperband sets it per bracket). Defaults to `20`.
            batch_size: int. As in `kerasreg.train`.
            optimizer: str. As in `kerasreg.train`.
            learning_rate: float. As in `kerasreg.train`.
            callbacks: the callbacks KerasTuner adds (they see the gap keys). Defaults to `()`.
            initial_epoch: int. Epochs the model already trained (Hyperband's
                continued trials); the trial trains `epochs - initial_epoch`
                more. Defaults to `0`.
            objective: str, `keras_tuner.Objective` or None. The metric whose
                best epoch is kept. Defaults to the tuner's objective.
            run_dir: str, path or None. The trial's run directory; the trained
                model and `result.json` go there, and a trial killed mid-training
                continues there from its last completed epoch. Defaults to
                `None` (in memory).
            verbose: int. 1 prints a line per epoch. Defaults to `0`.

        Returns:
            dict of `val_accuracy`, `val_loss`, the gaps and (with
            BatchNormalization) `variance_shift_max`.
        """
        if kwargs:
            raise TypeError(f"PlacementHyperModel.fit got unexpected argument(s): {', '.join(sorted(kwargs))}. "
                            "Pass a kerasreg Dataset and train()'s settings to `tuner.search`.")
        if not hasattr(dataset, "as_numpy"):
            raise _checks.invalid("dataset", "a kerasreg Dataset from kerasreg.load_dataset", type(dataset).__name__)
        callbacks = [make_resumable(c) for c in callbacks]
        objective = get_objective(objective or _objective_of(callbacks) or "val_accuracy")
        remaining = _checks.positive_int(epochs - initial_epoch, "epochs - initial_epoch")
        # Never stops (patience beyond the last epoch); restores the objective's best epoch at the end.
        keep_best = ResumableEarlyStopping(monitor=objective.name, mode=objective.direction,
                                           patience=remaining + 1, restore_best_weights=True)
        callbacks = [*callbacks, keep_best]
        # A trial killed mid-training (its search killed, or its worker) continues from its last epoch.
        resume = (run_dir is not None and all(map(is_resumable, callbacks))
                  and RunDir(run_dir).completed_epochs() > 0)
        result = train(model, dataset, epochs=remaining, batch_size=batch_size, optimizer=optimizer,
                       learning_rate=learning_rate, seed=self.seed, run_dir=run_dir, callbacks=callbacks,
                       resume=resume, verbose=1 if verbose == 1 else 0)
        if run_dir is not None:
            write_result(result, run_dir)
        return trial_metrics(result)
