"""A run on the other training backend, in a subprocess: Keras's backend is fixed when Keras is imported.

`run(config)` calls `run_elsewhere` when `config.backend` differs from this
process's backend; the subprocess (`python -m kerasreg.runs.other_backend`)
runs the same `run` there and reports the export path, or the error,
which is raised again here with its type. It dies with its parent.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile

from kerasreg import _backend
from kerasreg._locks import LockedError
from kerasreg.export import ExportExistsError
from kerasreg.training import CheckpointError, ResumeMismatchError, TrainingFailed

_ERRORS = {error.__name__: error for error in (
    ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError, PermissionError,
    ExportExistsError, TrainingFailed, LockedError, ResumeMismatchError, CheckpointError)}


def run_elsewhere(config, backend, **kwargs):
    """Run `run(config, **kwargs)` in a subprocess whose Keras runs on `backend`; returns the export path.

    Example:

    >>> run_elsewhere(RunConfig(epochs=2), "tensorflow", out="/tmp/exports")  # doctest: +SKIP
    PosixPath('/tmp/exports/mlp-bn_act_drop-standard0.2-seed0')
    """
    import pathlib

    request = {"config": dataclasses.asdict(config), "kwargs": {k: str(v) if isinstance(v, os.PathLike) else v
                                                                  for k, v in kwargs.items()}}
    with tempfile.TemporaryDirectory(prefix="kerasreg-run-") as tmp:
        answer_file = pathlib.Path(tmp) / "answer.json"
        request["answer"] = str(answer_file)
        proc = subprocess.run([sys.executable, "-m", "kerasreg.runs.other_backend", json.dumps(request)],
                              env=_backend.backend_env(backend))
        if not answer_file.exists():
            raise RuntimeError(f"The {backend} training process exited with code {proc.returncode} "
                               "without a result; its error is on stderr above.")
        answer = json.loads(answer_file.read_text())
    if "error" in answer:
        raise _ERRORS.get(answer["error"], RuntimeError)(answer["message"])
    return pathlib.Path(answer["path"])


def main(argv):
    """Run the request in `argv[0]` and write the answer file it names."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
    from kerasreg.runs.config import RunConfig
    from kerasreg.runs.execute import run

    request = json.loads(argv[0])
    try:
        path = run(RunConfig(**request["config"]), **request["kwargs"])
        answer = {"path": str(path)}
    except Exception as exc:  # raised again in the parent with its type
        answer = {"error": type(exc).__name__, "message": str(exc)}
    partial = request["answer"] + ".partial"
    with open(partial, "w") as f:
        json.dump(answer, f)
    os.replace(partial, request["answer"])


if __name__ == "__main__":
    main(sys.argv[1:])
