"""`import_dataset`: a user's `.npz`, CSV file or image folder becomes a TFDS dataset in the data directory.

The examples stream once from the source (`kerasreg.data.source_*`) into
TFRecord shards (`kerasreg.data.writing`), described by TFDS's
`tfds.folder_dataset.write_metadata`, so the result is an ordinary prepared
TFDS dataset (`data_dir/<name>/1.0.0/`: TFRecord shards, `dataset_info.json`,
class names, supervised keys) that `tfds.builder(name, data_dir=...)` reads
without kerasreg. Its description and its `metadata.json` record the source
and its sha256, hashed while the examples are written.

Nothing half-written is ever visible: the dataset is built in a temporary
sibling folder of `data_dir/<name>`, then published as a new version
(`kerasreg.data.versions`): a failure (a bad row found mid-way, a kill) leaves
the data directory as it was, and a process reading the dataset meanwhile
reads the old version or the new one, whole.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import pathlib
import re
import shutil
import sys

import tensorflow_datasets as tfds

from kerasreg import _checks
from kerasreg._locks import Lock
from kerasreg.data.builders import BUILTINS
from kerasreg.data.fingerprint import METADATA_KEY, fingerprint, import_record
from kerasreg.data.loading import quiet_absl, resolve_data_dir
from kerasreg.data.source_arrays import open_npz
from kerasreg.data.source_csv import open_csv
from kerasreg.data.source_images import open_images
from kerasreg.data.versions import leftovers, publish
from kerasreg.data.writing import features_of, write_source

VERSION = "1.0.0"
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class ImportedDataset:
    """What `import_dataset` wrote.

    Args:
        name: str. The dataset name, for `load_dataset` and `--dataset`.
        path: str. The prepared TFDS folder (`data_dir/<name>/1.0.0`).
        kind: str. `"npz"`, `"csv"` or `"images"`.
        source: str. The source file or folder (absolute).
        sha256: str. The source's fingerprint.
        input_shape: tuple of int. Shape of one input.
        class_names: tuple of str. Class names, by index.
        sizes: dict. Examples per split.
    """

    name: str
    path: str
    kind: str
    source: str
    sha256: str
    input_shape: tuple
    class_names: tuple
    sizes: dict


def import_dataset(
    name: str,
    source: str | os.PathLike,
    *,
    label: str | None = None,
    image_size: tuple[int, int] | None = None,
    test_split: float = 0.2,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> ImportedDataset:
    """Import an `.npz`, a CSV file or a folder of images as a TFDS dataset named `name`.

    Then `load_dataset(name)`, `kerasreg train --dataset name`, study files
    (`dataset = "name"`) and compare use it like a built-in. Sources:

    - `.npz`: arrays `x_train`, `y_train` (and optionally `x_test`, `y_test`),
      or `x`, `y` (split with `test_split` and `seed`).
    - `.csv`: a header row, numeric feature columns and a label column
      (`label`, default `"label"`); string labels become class names (sorted).
    - a folder: `root/<class>/*.png|jpg`, or `root/train/<class>/...` and
      `root/test/<class>/...`; resized to `image_size` (default the first
      image's size), grayscale or RGB kept.

    Integer labels must be every class index `0..K-1`; features must be
    finite. A bad source raises `ValueError` naming the file, column, row or
    image, and leaves the data directory untouched.

    Args:
        name: str. Dataset name: lowercase letters, digits and `_`, not a
            built-in or TFDS catalog name.
        source: str or path-like. The `.npz` file, CSV file or image folder.
        label: str or None. CSV label column. Defaults to `None` (`"label"`).
        image_size: tuple of two ints or None. `(height, width)` images are
            resized to. Defaults to `None` (the first image's size).
        test_split: float. Fraction held out as the test split when the
            source has none. Defaults to `0.2`.
        seed: int. Seed choosing the test examples. Defaults to `0`.
        data_dir: str or path-like or None. Defaults to `None`, meaning
            `default_data_dir()`.
        overwrite: bool. Replace an earlier import of the same name.
            Defaults to `False`.
        progress: bool or None. Show a progress bar; `None` shows one on a
            terminal once the import has taken a few seconds. Defaults to `None`.

    Returns:
        An `ImportedDataset`.

    Raises:
        ValueError: a bad name, source or argument (the message names it).
        FileExistsError: `name` is already in `data_dir` and `overwrite` is `False`.

    Example:

    >>> import sklearn, os
    >>> iris = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "data", "iris.csv")
    >>> imported = import_dataset("my_iris", iris, data_dir="/tmp/kerasreg_doc_data", overwrite=True)
    >>> imported.class_names, imported.sizes
    (('setosa', 'versicolor', 'virginica'), {'train': 120, 'test': 30})
    """
    _check_name(name)
    data_dir = resolve_data_dir(data_dir)
    source = os.path.abspath(os.fspath(source))
    opened = open_source(source, label=label, image_size=image_size, test_split=test_split, seed=seed)
    target = os.path.join(data_dir, name)
    os.makedirs(data_dir, exist_ok=True)
    with import_lock(name, data_dir):
        if os.path.exists(target) and not overwrite:
            raise FileExistsError(
                f"Dataset {name!r} already exists in {data_dir}{_imported_from(target)}. Pass "
                "overwrite=True (`--overwrite`) to replace it, or choose another name."
            )
        record = {"source": source, "kind": opened.kind, "sha256": None,
                  "test_split": None if opened.own_test else test_split, "seed": seed,
                  "label": label, "image_size": list(image_size) if image_size else None}
        with staging_folder(name, data_dir) as staging, concurrent.futures.ThreadPoolExecutor(1) as hasher:
            # hashlib and file reads release the GIL: the source is hashed on the other core meanwhile.
            sha256 = hasher.submit(fingerprint, source)
            class_names = _build(name, opened, record, staging, progress, sha256)
            publish(os.path.join(staging, name), name, data_dir)
    return ImportedDataset(name=name, path=os.path.join(target, VERSION), kind=opened.kind, source=source,
                           sha256=record["sha256"], input_shape=opened.input_shape, class_names=class_names,
                           sizes=dict(opened.sizes))


def open_source(source, *, label=None, image_size=None, test_split=0.2, seed=0):
    """Open `source` with the reader its kind needs (folder, `.npz` or `.csv`), checking it.

    Example:

    >>> open_source("iris.csv").kind  # doctest: +SKIP
    'csv'
    """
    _checks.seed(seed)
    _checks.fraction(test_split, "test_split")
    if os.path.isdir(source):
        return open_images(source, image_size=image_size, test_split=test_split, seed=seed)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"Source {source} does not exist.")
    extension = os.path.splitext(source)[1].lower()
    if extension == ".npz":
        return open_npz(source, test_split=test_split, seed=seed)
    if extension in (".csv", ".txt"):
        return open_csv(source, label=label, test_split=test_split, seed=seed)
    raise _checks.invalid("source", "an .npz file, a .csv file or a folder of class folders of images", source)


def _build(name, opened, record, staging, progress, sha256):
    """Write the shards, then (once the hash is known) TFDS's metadata; return the class names."""
    version_dir = os.path.join(staging, name, VERSION)
    with _progress_bar(sum(opened.sizes.values()), name, progress) as bar:
        split_infos = write_source(version_dir, name, opened, bar)
    class_names = opened.class_names()
    record["sha256"] = sha256.result()
    with quiet_absl():
        tfds.folder_dataset.write_metadata(
            data_dir=version_dir, features=features_of(opened, class_names), split_infos=split_infos,
            check_data=False, description=_description(opened, class_names, record),
            supervised_keys=(opened.input_key, "label"),
            metadata=tfds.core.MetadataDict({METADATA_KEY: record}),
            # Source order is kept: the test split is chosen with the seed, training shuffles anyway.
            disable_shuffling=True, homepage=pathlib.Path(record["source"]).as_uri(),
        )
    return class_names


def _description(opened, class_names, record):
    sizes = ", ".join(f"{count} {split}" for split, count in opened.sizes.items())
    return (
        f"{os.path.basename(record['source'])} imported by kerasreg ({opened.kind}): {sizes} examples of "
        f"shape {opened.input_shape}, {len(class_names)} classes.\n\n"
        f"Source: {record['source']}\nsha256: {record['sha256']}"
    )


def import_lock(name, data_dir, *, wait=False):
    """The lock every writer of dataset `name` in `data_dir` holds: an import, or a copy received from a driver.

    Example:

    >>> with import_lock("my_data", "/tmp/kerasreg_doc_data"):
    ...     pass
    """
    return Lock(os.path.join(data_dir, f".kerasreg-import-{name}.lock"), f"Dataset {name!r} in {data_dir}",
                wait=wait)


@contextlib.contextmanager
def staging_folder(name, data_dir):
    """A fresh temporary sibling folder to build dataset `name` in, removed afterwards (hold `import_lock`).

    What a killed writer left is removed first: with the lock held, no other writer is live (versions it
    left are removed when the next one is published).

    Example:

    >>> with import_lock("my_data", "/tmp/kerasreg_doc_data"), staging_folder("my_data", "/tmp/kerasreg_doc_data") as f:
    ...     pass
    """
    for entry in os.listdir(data_dir):
        if entry.startswith(leftovers(name)):
            path = os.path.join(data_dir, entry)
            if os.path.islink(path):
                os.unlink(path)
            else:
                shutil.rmtree(path, ignore_errors=True)
    staging = os.path.join(data_dir, f".{name}.importing-{os.getpid()}")
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_name(name):
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _checks.invalid("name", "a dataset name of lowercase letters, digits and _, starting "
                              "with a letter (e.g. 'wine')", name)
    if name in BUILTINS:
        raise ValueError(f"Dataset name {name!r} is taken by a kerasreg built-in; choose another name.")
    with quiet_absl():
        catalog = set(tfds.list_builders(with_community_datasets=False))
    if name in catalog:
        raise ValueError(
            f"Dataset name {name!r} is taken by the TFDS catalog (`tfds.builder({name!r})` would load "
            "that dataset instead); choose another name."
        )


def _imported_from(target):
    version_dir = os.path.join(target, VERSION)
    try:
        with quiet_absl():
            record = import_record(tfds.builder_from_directory(version_dir).info)
    except Exception:  # a dataset not written by kerasreg, or damaged: just say it exists
        record = None
    return f" (imported from {record['source']})" if record else ""


def _progress_bar(total, name, progress):
    from tqdm.auto import tqdm

    stderr = sys.stderr
    disable = not stderr.isatty() if progress is None else not progress
    return tqdm(total=total, desc=f"importing {name}", unit=" examples", file=stderr,
                disable=disable, delay=0 if progress else 3, leave=False,
                # Updated once per chunk (thousands of examples): every update is worth showing.
                mininterval=0, miniters=1)
