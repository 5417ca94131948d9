"""The split every dataset uses unless told otherwise, in a module that imports nothing (the CLI reads it).

Example:

>>> from kerasreg.data.defaults import VALIDATION_SPLIT
>>> VALIDATION_SPLIT
0.1
"""

VALIDATION_SPLIT = 0.1  # fraction of the train split held out for validation
