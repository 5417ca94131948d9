"""The placement study: a grid of runs, its executors, and the report it writes.

Example:

>>> import kerasreg
>>> config = kerasreg.StudyConfig(placements=["none", "dropout"], seeds=[0], epochs=2)
>>> report = kerasreg.run_study(config, "studies/tiny")  # doctest: +SKIP
"""

from kerasreg.study.config import PRESETS, StudyConfig
from kerasreg.study.executors import default_workers
from kerasreg.study.runner import FAILURES, RUNS_DIR, run_study

__all__ = ["FAILURES", "PRESETS", "RUNS_DIR", "StudyConfig", "default_workers", "run_study"]
