"""An atomic, verified training checkpoint: weights, optimizer, epoch and RNG state as one file.

A checkpoint is one file holding everything a resumed run needs to continue
exactly where the killed one stopped: the model's variables (including
BatchNormalization's moving statistics), the optimizer's variables (its step
counter and moments), the number of completed epochs, every random
layer's seed-generator state, whether a callback stopped training, and the
state of every resumable callback (early stopping's best value, best
weights and patience count; see `is_resumable`). Two slots, `checkpoint-a.bin` and
`checkpoint-b.bin`, alternate: each write goes to the slot that does *not*
hold the newest checkpoint, through a temporary file that is fsynced and
renamed into place (`kerasreg._files.write_atomic`), so a kill or a full
disk at any moment leaves the previous checkpoint intact.

Each file starts with a magic line and the sha256 of its body (a JSON
header describing every array, then the arrays' raw bytes). Loading verifies both,
checks that the arrays fit the model, and takes the newest valid slot; a
slot it had to skip is named in a message.

`write_behind` reads the state at once and leaves the file to a background
thread, one write at a time in the order asked: training goes on while the
last epoch's checkpoint reaches the disk (each write waits for two fsyncs and
a rename, as long as a small model's epoch when the disk is busy).

Only backend-neutral Keras calls are used (`variable.numpy()`,
`variable.assign`), so the same file works on every Keras backend.
"""

import concurrent.futures
import hashlib
import json
import pathlib

import numpy as np

from kerasreg._files import write_atomic

MAGIC = b"kerasreg-checkpoint/1\n"
SLOTS = ("a", "b")
_GROUPS = ("model", "optimizer", "seeds")


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit the model being resumed."""


def slot_path(directory, slot):
    """The file of one slot, e.g. `<dir>/checkpoint-a.bin`.

    Example:

    >>> slot_path("backup", "a").name
    'checkpoint-a.bin'
    """
    return pathlib.Path(directory) / f"checkpoint-{slot}.bin"


def seed_generators(model):
    """Every seed generator of the model's layers, in layer order.

    Example:

    >>> import keras
    >>> len(seed_generators(keras.Sequential([keras.Input((2,)), keras.layers.Dropout(0.5, seed=1)])))
    1
    """
    return [g for layer in model._flatten_layers() for g in getattr(layer, "_seed_generators", [])]


def is_resumable(callback):
    """True when a callback's state across epochs can be saved in the checkpoint.

    A resumable callback has `state_dict()`, returning a dict of JSON values
    (numbers, strings, None, lists, dicts) and lists of numpy arrays (such as
    `model.get_weights()`), and `load_state_dict(state)`, which takes that
    dict back (as PyTorch Lightning's callbacks do). A callback without state
    returns `{}`.

    Example:

    >>> from kerasreg.training.early_stopping import GapEarlyStopping
    >>> is_resumable(GapEarlyStopping(patience=2))
    True
    """
    return callable(getattr(callback, "state_dict", None)) and callable(getattr(callback, "load_state_dict", None))


def _array_list(value):
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(a, np.ndarray) for a in value)


def _json_value(value):
    if isinstance(value, np.generic):  # a metric logged as a numpy scalar
        return value.item()
    raise TypeError(f"not JSON serializable: {value!r}")


def _variables(model):
    optimizer = getattr(model, "optimizer", None)
    return {
        "model": list(model.weights),
        "optimizer": list(optimizer.variables) if optimizer is not None else [],
        "seeds": [g.state for g in seed_generators(model)],
    }


def _encode(model, epoch, callbacks=(), stopped=False):
    """MAGIC, sha256 of the body, then the body: header length, JSON header, raw array bytes in order."""
    meta, chunks = {"epoch": int(epoch), "stopped": bool(stopped)}, []

    def add(value):
        value = np.asarray(value)  # not ascontiguousarray: it makes scalars 1-d
        chunks.append(value.tobytes())
        return [list(value.shape), str(value.dtype)]

    for group, variables in _variables(model).items():
        meta[group] = [[variable.path, *add(variable.numpy())] for variable in variables]
    meta["callbacks"] = []
    for callback in callbacks:
        state = callback.state_dict()
        meta["callbacks"].append({
            "class": type(callback).__name__,
            "values": {key: value for key, value in state.items() if not _array_list(value)},
            "arrays": [[key, [add(a) for a in value]] for key, value in state.items() if _array_list(value)],
        })
    header = json.dumps(meta, default=_json_value).encode("utf-8")
    body = len(header).to_bytes(8, "little") + header + b"".join(chunks)
    return MAGIC + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body


def _dtype(name):
    try:
        return np.dtype(name)
    except TypeError:  # bfloat16 and friends are registered by ml_dtypes, which Keras depends on
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))


def _encoded(directory, model, epoch, callbacks, stopped):
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return _encode(model, epoch, [c for c in callbacks if is_resumable(c)], stopped)


def write(directory, model, epoch, slot, *, callbacks=(), stopped=False):
    """Write a checkpoint of `model` after `epoch` completed epochs into `slot`, atomically.

    Written with `kerasreg._files.write_atomic` (temporary file, fsync,
    rename over the slot, fsync of the directory): the slot holds either its
    old checkpoint or the new one, never a mix.
    The state of each resumable `callbacks` entry (see `is_resumable`) and
    `stopped` (a callback ended training after this epoch) are part of the
    same file.

    Example:

    >>> write("/tmp/run/backup", model, epoch=3, slot="b")  # doctest: +SKIP
    """
    write_atomic(slot_path(directory, slot), _encoded(directory, model, epoch, callbacks, stopped))


# One thread per process writes every checkpoint: writes never overlap or reorder, and the interpreter waits for
# a pending one before it exits.
_writer = None


def write_behind(directory, model, epoch, slot, *, callbacks=(), stopped=False):
    """Read the checkpoint's state now and `write` it from a background thread; returns the write's future.

    The model, optimizer, seed and callback states are copied before this
    returns, so training can go on at once. Writes run one at a time in the
    order they were asked for; `future.result()` waits for the file to be on
    disk and raises the write's error (an `OSError` naming the file).

    Example:

    >>> write_behind("/tmp/run/backup", model, epoch=3, slot="b").result()  # doctest: +SKIP
    """
    global _writer
    data = _encoded(directory, model, epoch, callbacks, stopped)
    if _writer is None:
        _writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="kerasreg-checkpoint")
    return _writer.submit(write_atomic, slot_path(directory, slot), data)


def wait_for_writes():
    """Block until every write asked of `write_behind` so far has ended; each error stays with its future.

    Training that stops on an error calls it, so that no checkpoint lands
    after the caller has moved on (released the run's lock, started over).

    Example:

    >>> wait_for_writes()
    """
    if _writer is not None:
        _writer.submit(int).result()


def _decode(path):
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise CheckpointError(f"{path.name} is not a kerasreg checkpoint (empty or truncated)")
    digest, _, body = data[len(MAGIC):].partition(b"\n")
    if hashlib.sha256(body).hexdigest().encode("ascii") != digest:
        raise CheckpointError(f"{path.name} is corrupt (sha256 mismatch)")
    size = int.from_bytes(body[:8], "little")
    meta = json.loads(body[8:8 + size].decode("utf-8"))
    offset = 8 + size

    def take(shape, dtype):
        nonlocal offset
        dtype, count = _dtype(dtype), int(np.prod(shape, dtype=np.int64))
        array = np.frombuffer(body, dtype, count=count, offset=offset).reshape(shape)
        offset += count * dtype.itemsize
        return array

    arrays = {f"{group}_{i}": take(shape, dtype)
              for group in _GROUPS for i, (_, shape, dtype) in enumerate(meta[group])}
    for state in meta.setdefault("callbacks", []):  # none in checkpoints of kerasreg 0.2
        state["values"].update({key: [take(*spec).copy() for spec in specs] for key, specs in state.pop("arrays")})
    if offset != len(body):
        raise CheckpointError(f"{path.name} has {len(body) - offset} bytes more than its header describes")
    return meta, arrays


def _check_fits(meta, model, path):
    for group, variables in _variables(model).items():
        # Shapes, not paths: layer names get process-wide counters ("dense_3").
        expected = [list(v.shape) for v in variables]
        found = [shape for _, shape, _ in meta[group]]
        if expected != found:
            raise CheckpointError(
                f"{path.name} holds {group} variables that do not fit this model "
                f"({len(found)} saved, {len(expected)} in the model); it is from another configuration"
            )


def read_latest(directory):
    """The newest valid checkpoint in `directory` as `(slot, epoch, arrays, skipped)`, or None.

    `skipped` lists one message per slot that exists but failed verification.
    Raises `CheckpointError` when slots exist but none is valid.

    Example:

    >>> read_latest("/nonexistent") is None
    True
    """
    directory = pathlib.Path(directory)
    valid, skipped = [], []
    for slot in SLOTS:
        path = slot_path(directory, slot)
        if not path.exists():
            continue
        try:
            meta, arrays = _decode(path)
        except (CheckpointError, OSError, ValueError, KeyError) as exc:
            message = str(exc) if isinstance(exc, CheckpointError) else f"{path.name} is unreadable ({exc})"
            skipped.append(message)
            continue
        valid.append((meta["epoch"], slot, meta, arrays))
    if not valid:
        if skipped:
            raise CheckpointError(
                f"No valid checkpoint in {directory}: {'; '.join(skipped)}. "
                "Start the run again without resume."
            )
        return None
    epoch, slot, meta, arrays = max(valid, key=lambda item: item[0])
    return {"slot": slot, "epoch": epoch, "meta": meta, "arrays": arrays, "skipped": skipped,
            "path": slot_path(directory, slot), "stopped": meta.get("stopped", False)}


def _check_callbacks(meta, callbacks, path):
    saved = [state["class"] for state in meta["callbacks"]]
    current = [type(c).__name__ for c in callbacks]
    if saved != current:
        raise CheckpointError(
            f"{path.name} holds the state of callbacks {saved or 'none'}, but this run has {current or 'none'}; "
            "it is from another configuration (or an older kerasreg). Start the run again without resume."
        )


def restore(checkpoint, model, callbacks=()):
    """Assign a checkpoint read by `read_latest` to the model, its optimizer, seed generators and callbacks.

    `callbacks` are the resumable callbacks of the run (see `is_resumable`),
    in the order they were checkpointed; each gets its saved state through
    `load_state_dict`.

    Example:

    >>> restore(read_latest("/tmp/run/backup"), model)  # doctest: +SKIP
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        # Some backends build the optimizer at the first step; its slots must exist to be restored.
        optimizer.build(model.trainable_variables)
    callbacks = [c for c in callbacks if is_resumable(c)]
    _check_fits(checkpoint["meta"], model, checkpoint["path"])
    _check_callbacks(checkpoint["meta"], callbacks, checkpoint["path"])
    for group, variables in _variables(model).items():
        for i, variable in enumerate(variables):
            variable.assign(checkpoint["arrays"][f"{group}_{i}"])
    for callback, state in zip(callbacks, checkpoint["meta"]["callbacks"]):
        callback.load_state_dict(state["values"])
