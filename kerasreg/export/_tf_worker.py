"""The TensorFlow worker that writes SavedModels for processes on another backend (see `tf_process`).

Run as `python -m kerasreg.export._tf_worker` with `KERAS_BACKEND=tensorflow`;
it serves requests until its stdin closes and dies with its parent.
"""

import importlib
import json
import os
import sys

from kerasreg import _backend


def _serve(requests, answers):
    import keras

    from kerasreg.export import writer

    for line in requests:
        request = json.loads(line)
        try:
            for module in request["modules"]:
                try:
                    importlib.import_module(module)
                except ImportError:
                    pass  # loading then names the class it cannot find
            model = keras.saving.load_model(request["model"], compile=False)
            input_shape, dtype = writer._input_spec(model)
            writer._write_saved_model(model, request["saved_model"], input_shape, dtype)
            folded = None
            if request["folded"]:
                folded = writer._fold_and_write(model, request["folded"], input_shape, dtype)
            answer = {"folded": folded}
        except Exception as exc:  # reported to the caller, which raises it
            answer = {"error": type(exc).__name__, "message": str(exc)}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main():
    """Serve export requests until stdin closes (the parent's end)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints (TensorFlow's own) must not corrupt the answers
    sys.stdout = sys.stderr
    if _backend.backend() != "tensorflow":
        raise SystemExit("kerasreg.export._tf_worker needs KERAS_BACKEND=tensorflow")
    _serve(sys.stdin, answers)


if __name__ == "__main__":
    main()
