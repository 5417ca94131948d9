"""Training defaults, in one place: `train`, `RunConfig`, `StudyConfig` and the command line's help read them.

Light on purpose (no Keras): `kerasreg train --help` shows them without
loading a framework.
"""

EPOCHS = 50
BATCH_SIZE = 100
OPTIMIZER = "adam"
LEARNING_RATE = 1e-3
