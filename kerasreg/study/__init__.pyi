"""Public names of `kerasreg.study`: the placement study: a grid of runs, its executors, and the report it writes.

The one list of what the package exports: type checkers read it, and
`kerasreg._lazy.attach_stub` turns it into names loaded on first use.
"""

from kerasreg.study.config import PRESETS as PRESETS, StudyConfig as StudyConfig
from kerasreg.study.workers import default_workers as default_workers
from kerasreg.study.runner import FAILURES as FAILURES, RUNS_DIR as RUNS_DIR, run_study as run_study
