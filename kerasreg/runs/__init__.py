"""One configured run: `RunConfig` and `run` (validate, build, train, export), shared by `train` and `study`.

Names load on first use.

Example:

>>> import kerasreg
>>> path = kerasreg.run(kerasreg.RunConfig(epochs=2), out="saved_models")  # doctest: +SKIP
"""

from kerasreg import _lazy

# Each public name and the module that defines it, imported on first use.
__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "kerasreg.runs.config": ["RunConfig", "check_known_keys", "read_toml"],
    "kerasreg.runs.execute": ["WORK_DIR", "prepare", "run", "train_in"],
})
