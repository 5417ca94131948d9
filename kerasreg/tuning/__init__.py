"""Search: placements, kinds, rates and architecture options as KerasTuner hyperparameters.

Needs KerasTuner (`pip install "kerasreg[tune]"`); names load on first use,
so `import kerasreg` and `kerasreg --help` never import it.

Example:

>>> import kerasreg
>>> config = kerasreg.tuning.TuneConfig(placements=["bn_before_act", "bn_act_drop"], max_trials=2, epochs=2)
>>> report = kerasreg.tuning.tune(config, "tunes/demo", verbose=0)  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from kerasreg import _lazy

if TYPE_CHECKING:
    from kerasreg.tuning.config import OBJECTIVES, TUNERS, TuneConfig
    from kerasreg.tuning.hypermodel import PlacementHyperModel, get_objective
    from kerasreg.tuning.runner import TuneReport, tune
    from kerasreg.tuning.space import SearchSpace, search_space

__getattr__, __dir__, __all__ = _lazy.attach_typed(__name__, __file__)
