"""What a study worker hands back: one trained run as plain data, so workers share nothing with the driver.

A worker trains in a scratch run directory of its own and returns
`RunArtifacts`: the run's files (trained `model.keras`, `history.csv`,
`gaps.jsonl`, `variance_shift.jsonl`, TensorBoard `logs/`, `status.json`)
as bytes plus its `RunResult` without the model. The driver alone writes
the study folder: it unpacks the files into its own scratch directory and
exports the run from there. No shared file system is assumed.
"""

import dataclasses
import pathlib
import shutil

import keras

from kerasreg.export import export_run
from kerasreg.models import factory as _factory  # noqa: F401  (registers kerasreg's Keras classes for load_model)
from kerasreg.training import RunResult
from kerasreg.training.run_dir import MODEL_FILE, STATUS


@dataclasses.dataclass
class RunArtifacts:
    """A trained run as plain, picklable data.

    Attributes:
        name: str. The run (and export) name.
        result: `RunResult` with `model=None` and `run_dir=None`.
        files: dict mapping `/`-separated paths inside the run directory to bytes.
    """

    name: str
    result: RunResult
    files: dict


def _plain(value):
    """Plain dicts and lists: Keras wraps a model's dict attributes in tracking types that do not unpickle alone.

    For pickling to the driver, not JSON: tuples, NumPy values and NaN stay as they are (`_json.jsonable` is JSON's).
    """
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value) if type(value) in (list, tuple) else list(map(_plain, value))
    return value


def pack(name, result, run_dir):
    """Collect a finished run directory and its result as `RunArtifacts` (the model travels as `model.keras`).

    Example:

    >>> artifacts = pack("mlp-none-seed0", result, "runs/.work/mlp-none-seed0")  # doctest: +SKIP
    """
    run_dir = pathlib.Path(run_dir)
    files = {
        path.relative_to(run_dir).as_posix(): path.read_bytes()
        for path in sorted(run_dir.rglob("*"))
        if path.is_file()
    }
    if MODEL_FILE not in files or STATUS not in files:
        raise RuntimeError(f"Run directory {run_dir} holds no finished run ({MODEL_FILE} and {STATUS} missing).")
    plain = dataclasses.replace(result, model=None, run_dir=None, config=_plain(result.config),
                                history=_plain(result.history))
    return RunArtifacts(name, plain, files)


def export_artifacts(artifacts, runs_dir, scratch_dir):
    """Write a run's files into `scratch_dir`, reload its model and export it into `runs_dir`; returns the path.

    The scratch directory is removed afterwards, whatever happens.

    Example:

    >>> export_artifacts(artifacts, "studies/quick/runs", "studies/quick/runs/.work/x")  # doctest: +SKIP
    PosixPath('studies/quick/runs/x')
    """
    scratch_dir = pathlib.Path(scratch_dir)
    shutil.rmtree(scratch_dir, ignore_errors=True)
    try:
        for relative, content in artifacts.files.items():
            target = scratch_dir / relative
            if scratch_dir.resolve() not in target.resolve().parents:
                raise ValueError(f"Run artifacts of {artifacts.name!r} name a path outside the run: {relative!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        model = keras.saving.load_model(scratch_dir / MODEL_FILE, safe_mode=True)
        result = dataclasses.replace(artifacts.result, model=model, run_dir=scratch_dir)
        return export_run(result, out=runs_dir, name=artifacts.name)
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)
