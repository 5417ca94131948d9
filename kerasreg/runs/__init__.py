"""One configured run: `RunConfig` and `run` (validate, build, train, export), shared by `train` and `study`.

Names load on first use.

Example:

>>> import kerasreg
>>> path = kerasreg.run(kerasreg.RunConfig(epochs=2), out="saved_models")  # doctest: +SKIP
"""

from kerasreg import _lazy

# The public names are listed in __init__.pyi; each loads on first use.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
