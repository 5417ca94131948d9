"""Public names of `kerasreg.tuning`: search: placements, kinds, rates and architecture options as KerasTuner hyperparameters.

The one list of what the package exports: type checkers read it, and
`kerasreg._lazy.attach_stub` turns it into names loaded on first use.
"""

from kerasreg.tuning.config import OBJECTIVES as OBJECTIVES, TuneConfig as TuneConfig
from kerasreg.tuning.defaults import TUNERS as TUNERS
from kerasreg.tuning.hypermodel import PlacementHyperModel as PlacementHyperModel, get_objective as get_objective
from kerasreg.tuning.runner import TuneReport as TuneReport, tune as tune
from kerasreg.tuning.space import SearchSpace as SearchSpace, search_space as search_space
