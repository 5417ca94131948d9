"""Search: placements, kinds, rates and architecture options as KerasTuner hyperparameters.

Needs KerasTuner (`pip install "kerasreg[tune]"`); names load on first use,
so `import kerasreg` and `kerasreg --help` never import it.

Example:

>>> import kerasreg
>>> config = kerasreg.tuning.TuneConfig(placements=["bn_before_act", "bn_act_drop"], max_trials=2, epochs=2)
>>> report = kerasreg.tuning.tune(config, "tunes/demo", verbose=0)  # doctest: +SKIP
"""

from kerasreg import _lazy

# The public names are listed in __init__.pyi; each loads on first use.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
