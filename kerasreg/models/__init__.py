"""What a model is: placements, dropout/norm kinds, architectures, and the factory that combines them.

Names load on first use: listing placements or models does not import Keras.

Example:

>>> from kerasreg.models import build_model
>>> build_model("mlp", placement="ic", input_shape=(40,), num_classes=10).output_shape
(None, 10)
"""

from kerasreg import _lazy

# The public names are listed in __init__.pyi; each loads on first use.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
