"""Analysis: compare exports side by side, the study report, figures and Monte Carlo dropout.

Names load on first use.

Example:

>>> import kerasreg
>>> kerasreg.compare_exports("saved_models").format_table()  # doctest: +SKIP
"""

from kerasreg import _lazy

# The public names are listed in __init__.pyi; each loads on first use.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
