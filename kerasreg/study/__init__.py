"""The placement study: a grid of runs, its executors, and the report it writes.

Names load on first use.

Example:

>>> import kerasreg
>>> config = kerasreg.StudyConfig(placements=["none", "dropout"], seeds=[0], epochs=2)
>>> report = kerasreg.run_study(config, "studies/tiny")  # doctest: +SKIP
"""

from kerasreg import _lazy

# The public names are listed in __init__.pyi; each loads on first use.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
