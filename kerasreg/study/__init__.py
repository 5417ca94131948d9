"""The placement study: a grid of runs, its executors, and the report it writes.

Names load on first use.

Example:

>>> import kerasreg
>>> config = kerasreg.StudyConfig(placements=["none", "dropout"], seeds=[0], epochs=2)
>>> report = kerasreg.run_study(config, "studies/tiny")  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from kerasreg import _lazy

if TYPE_CHECKING:
    from kerasreg.study.config import PRESETS, StudyConfig
    from kerasreg.study.executors import default_workers
    from kerasreg.study.runner import FAILURES, RUNS_DIR, run_study

__getattr__, __dir__, __all__ = _lazy.attach_typed(__name__, __file__)
