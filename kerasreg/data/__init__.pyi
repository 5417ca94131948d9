"""Public names of `kerasreg.data`: datasets: offline TFDS builders, seeded splits and resumable `tf.data` pipelines.

The one list of what the package exports: type checkers read it, and
`kerasreg._lazy.attach_stub` turns it into names loaded on first use.
"""

from kerasreg.data.catalog import (
    DatasetListing as DatasetListing,
    dataset_info as dataset_info,
    format_dataset_list as format_dataset_list,
    list_datasets as list_datasets,
)
from kerasreg.data.dataset import SPLITS as SPLITS, Dataset as Dataset
from kerasreg.data.importing import ImportedDataset as ImportedDataset, import_dataset as import_dataset
from kerasreg.data.loading import (
    DatasetDamagedError as DatasetDamagedError,
    DatasetNotPreparedError as DatasetNotPreparedError,
    check_validation_split as check_validation_split,
    default_data_dir as default_data_dir,
    load_dataset as load_dataset,
    rebuild_dataset as rebuild_dataset,
)
