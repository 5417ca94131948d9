"""Datasets: offline TFDS builders, seeded splits and resumable `tf.data` pipelines.

Names load on first use: TFDS and TensorFlow are imported only when a dataset is.

Example:

>>> from kerasreg.data import load_dataset
>>> load_dataset("mnist1d").sizes
{'train': 3600, 'val': 400, 'test': 1000}
"""

from kerasreg import _lazy

# Each public name and the module that defines it, imported on first use.
__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "kerasreg.data.catalog": ["DatasetListing", "dataset_info", "format_dataset_list", "list_datasets"],
    "kerasreg.data.dataset": ["SPLITS", "Dataset"],
    "kerasreg.data.importing": ["ImportedDataset", "import_dataset"],
    "kerasreg.data.loading": ["DatasetNotPreparedError", "check_validation_split", "default_data_dir", "load_dataset"],
})
