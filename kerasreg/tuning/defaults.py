"""Search defaults, in one place: `TuneConfig`, `PlacementHyperModel.fit`, the runner and `kerasreg tune --help`.

Light on purpose (no Keras, no KerasTuner): `kerasreg tune --help` shows
them without loading a framework. A trial trains with the training
defaults (`kerasreg.training.defaults`) but for its epochs.
"""

TUNERS = ("random", "bayesian", "hyperband")
EPOCHS = 20  # per trial: fewer than one run's, since a search trains many
MAX_TRIALS = 10  # random and bayesian; hyperband sets its own
BEST = 3
