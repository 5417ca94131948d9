"""Datasets: offline TFDS builders, seeded splits and resumable `tf.data` pipelines.

Names load on first use: TFDS and TensorFlow are imported only when a dataset is.

Example:

>>> from kerasreg.data import load_dataset
>>> load_dataset("mnist1d").sizes
{'train': 3600, 'val': 400, 'test': 1000}
"""

from typing import TYPE_CHECKING

from kerasreg import _lazy

if TYPE_CHECKING:
    from kerasreg.data.catalog import DatasetListing, dataset_info, format_dataset_list, list_datasets
    from kerasreg.data.dataset import SPLITS, Dataset
    from kerasreg.data.importing import ImportedDataset, import_dataset
    from kerasreg.data.loading import DatasetNotPreparedError, check_validation_split, default_data_dir, load_dataset

__getattr__, __dir__, __all__ = _lazy.attach_typed(__name__, __file__)
