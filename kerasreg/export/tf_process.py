"""SavedModels are written by TensorFlow: a TensorFlow-backend process that a process on another backend asks.

Keras fixes its backend when it is imported, and a SavedModel exported
under JAX goes through jax2tf: it serves, but TFLite conversion fails on
the seed-generator state. So a JAX process saves the trained `.keras` file
(backend-neutral) and this module's worker process, started once with
`KERAS_BACKEND=tensorflow` and reused for every later export, loads it and
writes the SavedModel (and the BatchNorm-folded one) exactly as a
TensorFlow process would in-process.

The worker (`python -m kerasreg.export._tf_worker`) reads one JSON request
per line on stdin and answers one JSON line on its own copy of stdout;
anything else it prints goes to stderr.
"""

import atexit
import json
import subprocess
import sys
import threading

from kerasreg import _backend

_ERRORS = {"ValueError": ValueError, "TypeError": TypeError, "RuntimeError": RuntimeError,
           "FileNotFoundError": FileNotFoundError}


def custom_modules(model):
    """Modules defining the model's layer classes outside Keras and kerasreg (the worker imports them).

    Example:

    >>> custom_modules(kerasreg.build_model("mlp", input_shape=(40,), num_classes=10))  # doctest: +SKIP
    []
    """
    layers = [model, *model._flatten_layers(include_self=False, recursive=True)]
    modules = {type(layer).__module__ for layer in layers}
    return sorted(m for m in modules if m.split(".")[0] not in ("keras", "kerasreg", "__main__"))


class _Worker:
    """The one TensorFlow worker of this process, started on first use."""

    def __init__(self):
        self._proc = None
        self._lock = threading.Lock()

    def _start(self):
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "kerasreg.export._tf_worker"], env=_backend.backend_env("tensorflow"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def request(self, **fields):
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            try:
                self._proc.stdin.write(json.dumps(fields) + "\n")
                self._proc.stdin.flush()
                line = self._proc.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if not line:
                code = self._proc.wait()
                self._proc = None
                raise RuntimeError(
                    f"The TensorFlow export process exited (code {code}) before writing the "
                    "SavedModel; its error is on stderr above.")
        answer = json.loads(line)
        if "error" in answer:
            raise _ERRORS.get(answer["error"], RuntimeError)(answer["message"])
        return answer

    def close(self):
        if self._proc is not None and self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=60)
            self._proc.stdout.close()


_WORKER = _Worker()
atexit.register(_WORKER.close)


def write_saved_models(keras_file, saved_model, folded=None, *, modules=()):
    """Write `saved_model` (and `folded`, BatchNorm folded) from a `.keras` file, in a TensorFlow process.

    Returns:
        The folded export's manifest entry (`path`, `pairs`, `max_abs_diff`), or None.

    Example:

    >>> write_saved_models("run/model.keras", "run/saved_model")  # doctest: +SKIP
    """
    answer = _WORKER.request(model=str(keras_file), saved_model=str(saved_model),
                             folded=None if folded is None else str(folded), modules=list(modules))
    return answer["folded"]
