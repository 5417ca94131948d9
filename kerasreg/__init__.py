"""kerasreg: where should Dropout and BatchNormalization go, measured.

Public names load on first use (PEP 562, listed in `__init__.pyi`): `import
kerasreg` is light, and TensorFlow, TFDS and matplotlib are imported by the
functions that need them. The only thing `import kerasreg` changes in the
process is `KERAS_BACKEND`, set to `jax` when the user chose no backend.

kerasreg's Keras classes (`ZooFunctional`, `ZooSequential`, `Uout`) are
registered with Keras when kerasreg's model code loads: at `import kerasreg`
if Keras is already imported, else at the first kerasreg call that builds or
loads a model. `keras.saving.load_model("model.keras")` finds them from then
on (in a fresh process, `import keras, kerasreg` in that order is enough).

Example:

>>> import kerasreg
>>> model = kerasreg.build_model("mlp", placement="bn_before_act", input_shape=(40,), num_classes=10)
"""

import sys as _sys

from kerasreg import _backend  # noqa: F401  (must run before Keras is imported)
from kerasreg import _lazy
from kerasreg._version import __version__

# The public names are listed in __init__.pyi; each loads on first use.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
if "keras" in _sys.modules:
    from kerasreg.models import factory as _factory  # noqa: F401  (registers the Keras classes)
