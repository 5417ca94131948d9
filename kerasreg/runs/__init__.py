"""One configured run: `RunConfig` and `run` (validate, build, train, export), shared by `train` and `study`.

Example:

>>> import kerasreg
>>> path = kerasreg.run(kerasreg.RunConfig(epochs=2), out="saved_models")  # doctest: +SKIP
"""

from kerasreg.runs.config import RunConfig, check_known_keys, read_toml
from kerasreg.runs.execute import WORK_DIR, prepare, run, train_in

__all__ = ["WORK_DIR", "RunConfig", "check_known_keys", "prepare", "read_toml", "run", "train_in"]
