"""Public names of `kerasreg.runs`: one configured run: `RunConfig` and `run` (validate, build, train, export), shared by `train` and `study`.

The one list of what the package exports: type checkers read it, and
`kerasreg._lazy.attach_stub` turns it into names loaded on first use.
"""

from kerasreg.runs.config import RunConfig as RunConfig, check_known_keys as check_known_keys, read_toml as read_toml
from kerasreg.runs.execute import WORK_DIR as WORK_DIR, prepare as prepare, run as run, train_in as train_in
