"""A study in TensorBoard's HParams dashboard: one session per run, its grid point and its final metrics.

`write_hparams` writes the HParams plugin's experiment config (the grid's
axes and the metrics) into `<out>/hparams/`, and one session per run into
`<out>/hparams/<run>/`: its hparams (architecture, placement, dropout kind,
rate, norm, seed) and its final metrics as scalars at step 0. Then

    tensorboard --logdir <out>

shows the table and parallel-coordinates views of the grid against test
accuracy, clean and reported gap and variance shift (also after BatchNorm
re-estimation), next to the per-epoch scalars every run already logs in
`runs/<run>/logs/`.
"""

import math
import pathlib
import shutil
import tempfile

from kerasreg._files import replace_dir

HPARAMS_DIR = "hparams"
HPARAMS = (
    # row key, HParams name, Python type of its values
    ("architecture", "architecture", str),
    ("placement", "placement", str),
    ("dropout", "dropout", str),
    ("dropout_rate", "dropout_rate", float),
    ("norm", "norm", str),
    ("seed", "seed", int),
)
METRICS = {
    # row key: display name
    "test_accuracy": "test accuracy",
    "clean_gap": "clean gap (train acc in inference mode - val acc)",
    "reported_gap": "reported gap (Keras running train acc - val acc)",
    "variance_shift_max": "BatchNorm variance shift max(r, 1/r)",
    "test_accuracy_reestimated": "test accuracy, BatchNorm statistics re-estimated",
    "variance_shift_reestimated": "variance shift, BatchNorm statistics re-estimated",
    "val_accuracy": "validation accuracy",
}


def _value(row, key, kind):
    value = row.get(key)
    if value is None:
        return "none" if kind is str else None
    return kind(value)


def _finite(value):
    return value is not None and math.isfinite(float(value))


def _write(folder, rows):
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    params = {}
    for key, name, kind in HPARAMS:
        values = sorted({v for v in (_value(r, key, kind) for r in rows) if v is not None})
        params[key] = hp.HParam(name, hp.Discrete(values) if values else None)
    with tf.summary.create_file_writer(str(folder)).as_default():
        hp.hparams_config(hparams=list(params.values()),
                          metrics=[hp.Metric(key, display_name=text) for key, text in METRICS.items()])
    for row in rows:
        with tf.summary.create_file_writer(str(folder / row["run"])).as_default():
            values = {params[key]: _value(row, key, kind) for key, _, kind in HPARAMS}
            hp.hparams({p: v for p, v in values.items() if v is not None}, trial_id=row["run"])
            for key in METRICS:
                if _finite(row.get(key)):
                    tf.summary.scalar(key, float(row[key]), step=0)


def write_hparams(out, rows):
    """Write the HParams experiment and one session per run into `<out>/hparams/`; returns that folder.

    The folder is written next to it under a temporary name and then swapped
    in, so a report rewritten after more runs finished replaces the old
    sessions instead of mixing with them.

    Args:
        out: str or path. The study folder.
        rows: list of dict. Compare rows (one per run) with `run`, the grid
            keys (`architecture`, `placement`, `dropout`, `dropout_rate`,
            `norm`, `seed`) and the metrics in `METRICS`.

    Returns:
        pathlib.Path of the `hparams` folder.

    Example:

    >>> write_hparams("studies/quick", kerasreg.compare_exports("studies/quick/runs").rows)  # doctest: +SKIP
    PosixPath('studies/quick/hparams')
    """
    out = pathlib.Path(out)
    final = out / HPARAMS_DIR
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{HPARAMS_DIR}-", dir=out))
    staging.chmod(0o755)  # mkdtemp makes it private; the study folder is not
    try:
        _write(staging, rows)
        replace_dir(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
