"""Diagnose a trained model kerasreg did not build: where dropout feeds BatchNormalization and what it costs.

`find_structure` reads the graph, `diagnose` measures on the user's data,
`move_dropout` applies the fix the study supports.
"""

from kerasreg import _lazy

# Each public name and the module that defines it, imported on first use.
__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "kerasreg.diagnosis.inputs": ["load_model_file"],
    "kerasreg.diagnosis.move": ["move_dropout"],
    "kerasreg.diagnosis.result": ["Diagnosis", "diagnose"],
    "kerasreg.diagnosis.structure": ["DropoutPath", "Structure", "find_structure"],
})
