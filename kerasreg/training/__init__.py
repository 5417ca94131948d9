"""Training: `train`, the callbacks that measure overfitting, and the run directory.

Names load on first use.

Example:

>>> import kerasreg
>>> data = kerasreg.load_dataset("mnist1d")
>>> model = kerasreg.build_model("mlp", input_shape=data.input_shape, num_classes=10, seed=0)
>>> result = kerasreg.train(model, data, epochs=2, verbose=0)  # doctest: +SKIP
"""

from kerasreg import _lazy

# The public names are listed in __init__.pyi; each loads on first use.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
