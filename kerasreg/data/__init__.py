"""Datasets: offline TFDS builders, seeded splits and resumable `tf.data` pipelines.

Example:

>>> from kerasreg.data import load_dataset
>>> load_dataset("mnist1d").sizes
{'train': 3600, 'val': 400, 'test': 1000}
"""

from kerasreg.data.catalog import DatasetListing, dataset_info, format_dataset_list, list_datasets
from kerasreg.data.dataset import SPLITS, Dataset
from kerasreg.data.loading import DatasetNotPreparedError, check_validation_split, default_data_dir, load_dataset

__all__ = [
    "SPLITS",
    "Dataset",
    "DatasetListing",
    "DatasetNotPreparedError",
    "check_validation_split",
    "dataset_info",
    "default_data_dir",
    "format_dataset_list",
    "list_datasets",
    "load_dataset",
]
