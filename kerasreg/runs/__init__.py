"""One configured run: `RunConfig` and `run` (validate, build, train, export), shared by `train` and `study`.

Names load on first use.

Example:

>>> import kerasreg
>>> path = kerasreg.run(kerasreg.RunConfig(epochs=2), out="saved_models")  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from kerasreg import _lazy

if TYPE_CHECKING:
    from kerasreg.runs.config import RunConfig, check_known_keys, read_toml
    from kerasreg.runs.execute import WORK_DIR, prepare, run, train_in

__getattr__, __dir__, __all__ = _lazy.attach_typed(__name__, __file__)
