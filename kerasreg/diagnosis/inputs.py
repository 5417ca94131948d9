"""What `diagnose` is given: the model file, the data splits, and whether the two fit together.

Every check here fails early with a message naming the bad value, before
anything is measured.
"""

from __future__ import annotations

import dataclasses
import pathlib

import keras
import numpy as np

from kerasreg import _checks
from kerasreg.data.defaults import VALIDATION_SPLIT
from kerasreg.export.layout import MANIFEST, MODEL_FILE, NotAnExportError
from kerasreg.export.reader import verify_export
from kerasreg.models import factory as _factory  # noqa: F401  (registers kerasreg's Keras classes for load_model)


@dataclasses.dataclass(frozen=True)
class Splits:
    """The arrays `diagnose` measures on.

    Attributes:
        name: str. The dataset's name (`"arrays"` for arrays passed in).
        train, val: tuples `(x, y)` of np.ndarray.
        test: tuple `(x, y)` or None (measured only when asked for).
        num_classes: int or None. Known for a kerasreg `Dataset`.
    """

    name: str
    train: tuple
    val: tuple
    test: tuple | None = None
    num_classes: int | None = None


@dataclasses.dataclass(frozen=True)
class Task:
    """How a model's output is read: a classifier (softmax or logits) or a regression head.

    Attributes:
        kind: str. `"classification"` or `"regression"`.
        loss: a Keras loss matching the head and the labels.
        outputs: int. Size of the model's output.
    """

    kind: str
    loss: object
    outputs: int

    @property
    def classification(self):
        """True for a classifier (accuracy is measured)."""
        return self.kind == "classification"


def load_model_file(path, *, safe_mode=True):
    """Load a `.keras` file (or the `model.keras` of a kerasreg export folder) for diagnosis.

    An export is verified first, exactly as `kerasreg.load` verifies it:
    every checksum, and the ops of its SavedModels.

    Args:
        path: str or path-like. A `.keras` file, or an export folder.
        safe_mode: bool. Keras's safe mode: refuses to run the Python code
            stored in a Lambda layer. Defaults to `True`.

    Returns:
        Tuple `(model, manifest)`: the `keras.Model`, and the export's manifest
        dict when the file is part of a kerasreg export, else None.

    Raises:
        ExportIntegrityError: the export failed verification.

    Example:

    >>> model, manifest = load_model_file("saved_models/mlp-bn_act_drop/model.keras")  # doctest: +SKIP
    """
    import kerasreg.models.uout  # noqa: F401  (registers Uout with Keras before loading)

    path = pathlib.Path(path)
    manifest = None
    if path.is_dir():
        manifest = verify_export(path)
        path = path / MODEL_FILE
    elif (path.parent / MANIFEST).is_file():
        try:
            manifest = verify_export(path.parent)
        except NotAnExportError:
            pass  # another tool's manifest.json beside a plain `.keras` file
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {str(path)!r}: pass a `.keras` file or a kerasreg export folder.")
    if path.suffix != ".keras":
        raise _checks.invalid("model", "a `.keras` file (Keras 3 format) or an export folder", str(path))
    try:
        model = keras.saving.load_model(path, safe_mode=safe_mode)
    except ValueError as exc:
        if "Lambda" in str(exc) or "safe_mode" in str(exc):
            raise ValueError(
                f"{str(path)!r} contains a Lambda layer. A Lambda layer stores Python code, and Keras's safe mode "
                "refuses to run code from a file, since loading it could execute anything. If you trust the "
                "file, load it knowingly: `model = keras.saving.load_model(path, safe_mode=False)` and pass the "
                "model to `kerasreg.diagnose`, or add `--unsafe-load` to `kerasreg diagnose`.") from None
        raise ValueError(f"Could not load {str(path)!r}: {exc}") from None
    except Exception as exc:  # Keras raises what its parts raise: TypeError for an unknown class, h5py's OSError...
        raise ValueError(f"Could not load {str(path)!r} ({type(exc).__name__}: {exc}); save the model again "
                         "with `model.save(path)` from the code that defines its classes.") from None
    return model, manifest


def resolve_data(data, *, test=False, manifest=None, data_dir=None):
    """`Splits` from a kerasreg `Dataset`, a dataset name, or `((x_train, y_train), (x_val, y_val)[, (x_test, y_test)])`.

    A dataset name is loaded with `kerasreg.load_dataset`; when `manifest`
    (a kerasreg export's) names the same dataset, its validation split, split
    seed and standardization are used, so the splits are the run's own.

    Example:

    >>> resolve_data("mnist1d").train[0].shape  # doctest: +SKIP
    (3600, 40)
    """
    if isinstance(data, str):
        from kerasreg.data import load_dataset

        recorded = (manifest or {}).get("dataset") or {}
        kwargs = {}
        if recorded.get("name") == data:
            kwargs = {"validation_split": recorded.get("validation_split", VALIDATION_SPLIT),
                      "seed": recorded.get("split_seed", 0), "standardize": bool(recorded.get("standardize"))}
        data = load_dataset(data, data_dir=data_dir, **kwargs)
    if hasattr(data, "as_numpy"):
        return Splits(data.name, data.as_numpy("train"), data.as_numpy("val"),
                      data.as_numpy("test") if test else None, int(data.num_classes))
    if isinstance(data, (tuple, list)) and len(data) in (2, 3) and all(
            isinstance(part, (tuple, list)) and len(part) == 2 for part in data):
        parts = [tuple(np.asarray(a) for a in part) for part in data]
        for part, split in zip(parts, ("train", "val", "test")):
            if len(part[0]) != len(part[1]) or not len(part[0]):
                raise _checks.invalid("data", f"the {split} inputs and labels to have the same, non-zero number "
                                      "of rows", received=f"{len(part[0])} inputs and {len(part[1])} labels")
        return Splits("arrays", parts[0], parts[1], parts[2] if test and len(parts) == 3 else None)
    raise _checks.invalid("data", "a kerasreg `Dataset`, a dataset name, or `((x_train, y_train), (x_val, y_val))` "
                          "arrays", received=f"data={type(data).__name__}")


def _is_probability(rows):
    return bool(np.all(rows >= -1e-6) and np.allclose(rows.sum(axis=-1), 1.0, atol=1e-3))


def check_model(model, splits, *, outputs=None):
    """The `Task` of `model` on `splits`, or a ValueError saying why the two do not fit.

    Refused: a model with several inputs or outputs, inputs whose shape
    differs from the data's, and a classifier whose output size differs from
    the dataset's number of classes (or is smaller than its largest label).
    A one-unit output is read as a regression head: gaps on the loss only.
    Whether a classifier's head gives probabilities or logits is read from
    its inference-mode outputs on the first validation rows: `outputs()`
    returns them when given (`diagnose` passes a compiled pass it runs
    anyway), else `model` is called eagerly on 32 rows.

    Example:

    >>> check_model(model, resolve_data("mnist1d")).kind  # doctest: +SKIP
    'classification'
    """
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        names = ", ".join(t.name for t in [*model.inputs, *model.outputs])
        raise _checks.invalid(
            "model", "a model with one input and one output",
            received=f"model {model.name!r} with {len(model.inputs)} inputs and {len(model.outputs)} outputs "
                     f"({names}). Diagnose the single-input, single-output part, or a model built around it.")
    expected = tuple(model.inputs[0].shape[1:])
    got = tuple(splits.train[0].shape[1:])
    if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got)):
        raise _checks.invalid("data", f"inputs of shape {expected} (without the batch axis), as model "
                              f"{model.name!r} takes", received=f"inputs of shape {got} from dataset {splits.name!r}")
    size = model.outputs[0].shape[-1]
    y = splits.train[1]
    if size == 1 or len(model.outputs[0].shape) != 2:
        return Task("regression", keras.losses.MeanSquaredError(), int(size or 1))
    if splits.num_classes is not None and splits.num_classes != size:
        raise _checks.invalid("data", f"a dataset with {size} classes, the output size of model {model.name!r}",
                              received=f"dataset {splits.name!r} with {splits.num_classes} classes")
    sample = outputs() if outputs is not None else model(splits.val[0][:32], training=False)
    from_logits = not _is_probability(keras.ops.convert_to_numpy(sample).astype("float64"))
    if y.ndim == 2 and y.shape[-1] == size:
        return Task("classification", keras.losses.CategoricalCrossentropy(from_logits=from_logits), int(size))
    labels = np.asarray(y).reshape(-1)
    if not np.issubdtype(labels.dtype, np.integer) and not np.all(labels == np.round(labels)):
        raise _checks.invalid("data", f"integer class labels for a classifier with {size} outputs",
                              received=f"labels of dtype {labels.dtype} with non-integer values")
    if labels.min() < 0 or labels.max() >= size:
        raise _checks.invalid("data", f"class labels in [0, {size - 1}] for model {model.name!r} with "
                              f"{size} outputs", received=f"labels from {labels.min()} to {labels.max()}")
    return Task("classification", keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits), int(size))
