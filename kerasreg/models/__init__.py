"""What a model is: placements, dropout/norm kinds, architectures, and the factory that combines them.

Names load on first use: listing placements or models does not import Keras.

Example:

>>> from kerasreg.models import build_model
>>> build_model("mlp", placement="ic", input_shape=(40,), num_classes=10).output_shape
(None, 10)
"""

from kerasreg import _lazy

# Each public name and the module that defines it, imported on first use.
__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "kerasreg.models.factory": ["build_model", "describe"],
    "kerasreg.models.kinds": [
        "get_dropout_kind",
        "get_norm_kind",
        "list_dropout_kinds",
        "list_norm_kinds",
        "register_dropout_kind",
        "register_norm_kind",
    ],
    "kerasreg.models.options": ["BUILD_OPTIONS", "Option", "architecture_options"],
    "kerasreg.models.placements": ["Placement", "get_placement", "list_placements", "register_placement"],
    "kerasreg.models.uout": ["Uout"],
    "kerasreg.models.zoo": ["get_model_fn", "list_models", "model_options", "register_model"],
})
