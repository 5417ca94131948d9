"""KerasTuner's trial callbacks made resumable, so a killed trial continues from kerasreg's checkpoint.

`kerasreg.train(..., resume=True)` continues a run only with callbacks whose
state across epochs goes into the checkpoint (`state_dict()` /
`load_state_dict()`, see `kerasreg.training.checkpoint.is_resumable`).
KerasTuner adds two callbacks to every trial: one that reports each epoch to
the oracle (no state across epochs) and one that saves the weights of the
best epoch so far (its state is the best value). Both get the two methods
here; a trial whose callbacks cannot all resume starts over instead.
"""

import math

from kerasreg.training.checkpoint import is_resumable


def _best_value_state(callback):
    def state_dict():
        value = float(callback.best_value)
        return {"best_value": value if math.isfinite(value) else None}

    def load_state_dict(state):
        value = state["best_value"]
        if value is not None:
            callback.best_value = value

    return state_dict, load_state_dict


def make_resumable(callback):
    """Give KerasTuner's epoch-reporting and best-epoch-saving callbacks `state_dict`/`load_state_dict`.

    Other callbacks are returned as they are.

    Example:

    >>> callbacks = [make_resumable(c) for c in callbacks]  # doctest: +SKIP
    """
    if is_resumable(callback):
        return callback
    if hasattr(callback, "tuner") and hasattr(callback, "trial"):  # reports each epoch to the oracle: no state
        callback.state_dict, callback.load_state_dict = (lambda: {}), (lambda state: None)
    elif hasattr(callback, "best_value") and hasattr(callback, "objective"):  # saves the best epoch's weights
        callback.state_dict, callback.load_state_dict = _best_value_state(callback)
    return callback
