"""kerasreg: where should Dropout and BatchNormalization go, measured.

Example:

>>> import kerasreg
>>> model = kerasreg.build_model("mlp", placement="bn_before_act", input_shape=(40,), num_classes=10)
"""

from kerasreg import _backend  # noqa: F401  (must run before Keras is imported)

__version__ = "0.1.0"
