"""Public names of `kerasreg.models`: what a model is: placements, dropout/norm kinds, architectures, and the factory that combines them.

The one list of what the package exports: type checkers read it, and
`kerasreg._lazy.attach_stub` turns it into names loaded on first use.
"""

from kerasreg.models.factory import build_model as build_model, describe as describe
from kerasreg.models.kinds import (
    get_dropout_kind as get_dropout_kind,
    get_norm_kind as get_norm_kind,
    list_dropout_kinds as list_dropout_kinds,
    list_norm_kinds as list_norm_kinds,
    register_dropout_kind as register_dropout_kind,
    register_norm_kind as register_norm_kind,
)
from kerasreg.models.options import (
    BUILD_OPTIONS as BUILD_OPTIONS,
    Option as Option,
    architecture_options as architecture_options,
)
from kerasreg.models.placements import (
    Placement as Placement,
    get_placement as get_placement,
    list_placements as list_placements,
    register_placement as register_placement,
)
from kerasreg.models.uout import Uout as Uout
from kerasreg.models.zoo import (
    get_model_fn as get_model_fn,
    list_models as list_models,
    model_options as model_options,
    register_model as register_model,
)
