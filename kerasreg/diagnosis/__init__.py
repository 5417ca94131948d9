"""Diagnose a trained model kerasreg did not build: where dropout feeds BatchNormalization and what it costs.

`find_structure` reads the graph, `diagnose` measures on the user's data,
`move_dropout` applies the fix the study supports.
"""

from kerasreg import _lazy

# The public names are listed in __init__.pyi; each loads on first use.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
