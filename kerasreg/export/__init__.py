"""Exports: every run as a TensorFlow SavedModel + `.keras` + checksummed manifest, and verified loading.

Names load on first use: the file-name constants and errors of `layout`
import nothing heavy; writing and loading import TensorFlow.

Example:

>>> import kerasreg
>>> export = kerasreg.load("saved_models/mlp-bn_act_drop-standard0.2-seed0")  # doctest: +SKIP
"""

from kerasreg import _lazy

# The public names are listed in __init__.pyi; each loads on first use.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
