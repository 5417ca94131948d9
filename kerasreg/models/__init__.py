"""What a model is: placements, dropout/norm kinds, architectures, and the factory that combines them.

Example:

>>> from kerasreg.models import build_model
>>> build_model("mlp", placement="ic", input_shape=(40,), num_classes=10).output_shape
(None, 10)
"""

from kerasreg.models.factory import build_model, describe
from kerasreg.models.kinds import (
    Uout,
    get_dropout_kind,
    get_norm_kind,
    list_dropout_kinds,
    list_norm_kinds,
    register_dropout_kind,
    register_norm_kind,
)
from kerasreg.models.placements import Placement, get_placement, list_placements, register_placement
from kerasreg.models.zoo import get_model_fn, list_models, model_options, register_model

__all__ = [
    "Placement",
    "Uout",
    "build_model",
    "describe",
    "get_dropout_kind",
    "get_model_fn",
    "get_norm_kind",
    "get_placement",
    "list_dropout_kinds",
    "list_models",
    "list_norm_kinds",
    "list_placements",
    "model_options",
    "register_dropout_kind",
    "register_model",
    "register_norm_kind",
    "register_placement",
]
