"""The placement study: a grid of runs, its executors, and the report it writes.

Names load on first use.

Example:

>>> import kerasreg
>>> config = kerasreg.StudyConfig(placements=["none", "dropout"], seeds=[0], epochs=2)
>>> report = kerasreg.run_study(config, "studies/tiny")  # doctest: +SKIP
"""

from kerasreg import _lazy

# Each public name and the module that defines it, imported on first use.
__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "kerasreg.study.config": ["PRESETS", "StudyConfig"],
    "kerasreg.study.executors": ["default_workers"],
    "kerasreg.study.runner": ["FAILURES", "RUNS_DIR", "run_study"],
})
