"""What a model is: placements, dropout/norm kinds, architectures, and the factory that combines them.

Names load on first use: listing placements or models does not import Keras.

Example:

>>> from kerasreg.models import build_model
>>> build_model("mlp", placement="ic", input_shape=(40,), num_classes=10).output_shape
(None, 10)
"""

from typing import TYPE_CHECKING

from kerasreg import _lazy

if TYPE_CHECKING:
    from kerasreg.models.factory import build_model, describe
    from kerasreg.models.kinds import (
        get_dropout_kind,
        get_norm_kind,
        list_dropout_kinds,
        list_norm_kinds,
        register_dropout_kind,
        register_norm_kind,
    )
    from kerasreg.models.options import BUILD_OPTIONS, Option, architecture_options
    from kerasreg.models.placements import Placement, get_placement, list_placements, register_placement
    from kerasreg.models.uout import Uout
    from kerasreg.models.zoo import get_model_fn, list_models, model_options, register_model

__getattr__, __dir__, __all__ = _lazy.attach_typed(__name__, __file__)
