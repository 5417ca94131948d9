"""Checks that a model and a dataset fit together, before anything is compiled or written.

A wrong class count, a label outside the model's classes or a NaN input
otherwise surfaces late: as a graph error deep inside `fit`, or silently as
NaN metrics.
"""

import warnings

import numpy as np

SPLITS = ("train", "val", "test")


def check_model_and_data(model, dataset):
    """Raise a ValueError naming the problem if `model` cannot be trained and measured on `dataset`.

    Checked: the model's input shape equals the dataset's and its output
    size equals `dataset.num_classes`; every
    split has as many labels as inputs, labels are integer class indices in
    `[0, num_classes)`, and inputs are finite (no NaN or inf).

    Example:

    >>> import kerasreg
    >>> data = kerasreg.load_dataset("mnist1d")
    >>> model = kerasreg.build_model("mlp", input_shape=data.input_shape, num_classes=10, seed=0)
    >>> check_model_and_data(model, data)
    """
    name, classes = getattr(dataset, "name", "dataset"), dataset.num_classes
    outputs = getattr(model, "outputs", None)
    if outputs:
        size = outputs[0].shape[-1]
        if size != classes:
            raise ValueError(
                f"Model {model.name!r} outputs {size} classes but dataset {name!r} has {classes}. "
                f"Build it with num_classes={classes}."
            )
    inputs = getattr(model, "inputs", None)
    if inputs:
        expected = tuple(inputs[0].shape[1:])
        given = tuple(dataset.as_numpy("train")[0].shape[1:])
        if expected != given:
            raise ValueError(
                f"Model {model.name!r} takes inputs of shape {expected} but dataset {name!r} has inputs of "
                f"shape {given}. Build it with input_shape={given}."
            )
    for split in SPLITS:
        x, y = (np.asarray(a) for a in dataset.as_numpy(split))
        if len(x) != len(y):
            raise ValueError(f"Dataset {name!r} has {len(x)} inputs but {len(y)} labels in its {split} split.")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"Dataset {name!r} has {y.dtype} labels in its {split} split; expected integer class indices."
            )
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise ValueError(
                f"Dataset {name!r} has labels outside [0, {classes}) in its {split} split "
                f"(found {int(y.min())} to {int(y.max())}); labels must be class indices."
            )
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
            raise ValueError(
                f"Dataset {name!r} has {bad} NaN or infinite input values in its {split} split; "
                "metrics would be NaN. Clean or impute them before training."
            )


def warn_unless_probabilities(model, x):
    """Warn when `model`'s outputs on a few inputs `x` are not probabilities (no softmax at the end).

    `train` compiles the model with the probability form of the sparse
    categorical cross-entropy, as every kerasreg model ends with a softmax;
    a model that outputs logits would train with a wrong loss and report
    wrong gaps, without an error.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> warn_unless_probabilities(model, np.ones((2, 4), "float32"))  # doctest: +SKIP
    UserWarning: Model 'sequential' does not output probabilities ...
    """
    outputs = np.asarray(model(x, training=False), dtype=np.float64)
    if outputs.ndim and np.all(outputs >= 0) and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3):
        return
    warnings.warn(
        f"Model {model.name!r} does not output probabilities (its outputs on {len(x)} training inputs are not "
        "non-negative rows summing to 1, e.g. "
        f"{np.array2string(outputs[0][:4], precision=3)}): `train` uses the cross-entropy of probabilities, "
        "so its loss, accuracy and gaps would be wrong. End the model with a softmax "
        "(`keras.layers.Softmax()` or `activation=\"softmax\"` on the last layer).",
        UserWarning, stacklevel=3,
    )
