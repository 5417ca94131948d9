"""Datasets: offline TFDS builders, seeded splits and resumable `tf.data` pipelines.

Names load on first use: TFDS and TensorFlow are imported only when a dataset is.

Example:

>>> from kerasreg.data import load_dataset
>>> load_dataset("mnist1d").sizes
{'train': 3600, 'val': 400, 'test': 1000}
"""

from kerasreg import _lazy

# The public names are listed in __init__.pyi; each loads on first use.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
