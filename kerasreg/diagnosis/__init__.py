"""Diagnose a trained model kerasreg did not build: where dropout feeds BatchNormalization and what it costs.

`find_structure` reads the graph, `diagnose` measures on the user's data,
`move_dropout` applies the fix the study supports.
"""

from typing import TYPE_CHECKING

from kerasreg import _lazy

if TYPE_CHECKING:
    from kerasreg.diagnosis.inputs import load_model_file
    from kerasreg.diagnosis.move import move_dropout
    from kerasreg.diagnosis.result import Diagnosis, diagnose
    from kerasreg.diagnosis.structure import DropoutPath, Structure, find_structure

__getattr__, __dir__, __all__ = _lazy.attach_typed(__name__, __file__)
