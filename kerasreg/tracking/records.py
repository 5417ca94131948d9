"""What kerasreg logs to MLflow: a run's parameters, its per-epoch metrics, final metrics and folder.

Live, `MlflowCallback` logs every epoch's Keras logs as they come (accuracy,
loss, `val_*`, the clean and reported gaps, `variance_shift_*`,
`epoch_time`). After the fact, `log_finished_run` logs a run that trained
elsewhere (a study worker, a tuning trial) from its recorded history as a
child run, so executors and workers need no tracking of their own.
"""

from __future__ import annotations

import json

import keras

# The recorded run configuration's keys that are logged as parameters, in this order.
PARAMS = ("model", "placement", "dropout", "dropout_rate", "norm", "bn_preset", "api", "options", "seed",
          "backend", "dataset", "validation_split", "epochs", "batch_size", "optimizer", "learning_rate")
FINAL = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "clean_gap_accuracy", "clean_gap_loss",
         "reported_gap_accuracy", "reported_gap_loss", "variance_shift_max", "best_epoch", "epochs_run",
         "test_accuracy_reestimated", "variance_shift_reestimated")


def run_params(config):
    """The parameters of a run from its recorded configuration (`RunResult.config` or a model's `kerasreg_config`).

    Example:

    >>> run_params({"model": "mlp", "placement": "ic", "options": {"widths": [100, 100]}, "seed": 0})
    {'architecture': 'mlp', 'placement': 'ic', 'options': '{"widths": [100, 100]}', 'seed': 0}
    """
    params = {}
    for key in PARAMS:
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, (dict, list, tuple)):
            value = json.dumps(value, sort_keys=True)
        params["architecture" if key == "model" else key] = value
    return params


def final_metrics(result):
    """The final metrics of a `RunResult`, as the export's manifest records them.

    Example:

    >>> final_metrics(result)["clean_gap_accuracy"]  # doctest: +SKIP
    0.031
    """
    return {
        "val_accuracy": result.val_metrics.get("accuracy"), "val_loss": result.val_metrics.get("loss"),
        "test_accuracy": result.test_metrics.get("accuracy"), "test_loss": result.test_metrics.get("loss"),
        **result.gaps, "variance_shift_max": result.variance_shift_max,
        "best_epoch": result.config.get("best_epoch"), "epochs_run": result.config.get("epochs_run"),
        **(result.reestimated or {}),
    }


def log_final(run, metrics, history):
    """Log final metrics after the per-epoch ones: at the step after the last epoch, and as `final_<name>`
    when `<name>` is also a per-epoch curve (the final `val_accuracy` is the returned epoch's, not the last's).

    Example:

    >>> log_final(run, final_metrics(result), result.history)  # doctest: +SKIP
    """
    run.log_metrics({f"final_{k}" if k in history else k: v for k, v in metrics.items()},
                    step=max((len(v) for v in history.values()), default=0))


class MlflowCallback(keras.callbacks.Callback):
    """Logs each epoch's logs to an `MlflowRun` (step = epoch, 0-based, as Keras counts).

    Put it after the callbacks that add keys to the logs (kerasreg's gap
    callbacks, the epoch timer) so their keys are logged too.

    Example:

    >>> model.fit(x, y, epochs=3, callbacks=[MlflowCallback(run)])  # doctest: +SKIP
    """

    def __init__(self, run):
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch, logs=None):
        self.run.log_metrics(dict(logs or {}), step=epoch)


def log_finished_run(parent, name, *, params, history, metrics, folder=None):
    """Log a run that has finished as a child of `parent`: params, per-epoch history, final metrics, folder.

    Args:
        parent: `MlflowRun`.
        name: str. The child run's name.
        params: dict. Logged as parameters.
        history: dict of per-epoch lists (epoch `i` at step `i`).
        metrics: dict. Final metrics, at the step after the last epoch.
        folder: path or None. Uploaded as the run's artifacts (e.g. its export).

    Returns:
        The child `MlflowRun`.

    Example:

    >>> log_finished_run(parent, "mlp-ic-standard0.2-seed0", params={...}, history={...}, metrics={...})  # doctest: +SKIP
    """
    child = parent.child(name)
    child.log_params(params)
    history = {key: values for key, values in history.items() if key != "epoch"}
    child.log_history(history)
    log_final(child, metrics, history)
    if folder is not None:
        child.log_artifacts(folder)
    child.end()
    return child
