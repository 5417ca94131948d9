"""Loading datasets through TensorFlow Datasets, offline by default.

Every dataset goes through TFDS: the built-ins (`kerasreg.data.builders`)
are prepared into `data_dir` on first use and read back like any other
dataset. Any other TFDS dataset (`mnist`, `fashion_mnist`, `cifar10`, ...)
works once it is prepared in `data_dir`. Nothing downloads unless asked to,
and GCS is never tried, so an unprepared dataset fails in well under a
second instead of stalling on a network that is not there.

An imported dataset is read from one version (`kerasreg.data.versions`): a
process importing it again meanwhile changes nothing this read sees.

Validation is carved from train with a seed, never from test, and
standardization statistics come from the training part only, so nothing about
validation or test leaks into what the model is fitted on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import os
import re
import shlex
import shutil
import sys

import numpy as np
import tensorflow_datasets as tfds

from kerasreg import _checks
from kerasreg._files import os_error_from_text
from kerasreg._locks import Lock
from kerasreg.data.defaults import VALIDATION_SPLIT
from kerasreg.data.builders import BUILTINS
from kerasreg.data.dataset import Dataset, carve_validation, float_inputs
from kerasreg.data.fingerprint import check_source, import_record
from kerasreg.data.versions import current_folder, reading

_DATA_DIR_ENV = "KERASREG_DATA_DIR"
_TFDS_DATA_DIR_ENV = "TFDS_DATA_DIR"


class DatasetNotPreparedError(FileNotFoundError):
    """A TFDS dataset is not prepared in `data_dir` and downloads are off.

    A `FileNotFoundError` because that is what happened: the prepared files
    are not on disk. The message names the dataset, the directory searched
    and how to prepare it.
    """


class DatasetDamagedError(OSError):
    """A prepared dataset's record files are truncated or corrupt.

    Nothing is trained on what could still be read: the message names the
    dataset, the data directory, the damaged file and how to rebuild it.
    """


@dataclasses.dataclass(frozen=True)
class _Raw:
    """Train/test arrays as read from TFDS, shared by every load in a process, and the folder read from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple
    info: tfds.core.DatasetInfo
    record: dict | None
    folder: str


# Studies and tests call load_dataset many times per process; reading the
# TFDS files once per (name, data_dir) and version makes every later call near free.
_RAW_CACHE = {}


def default_data_dir() -> str:
    """Return the directory where datasets are prepared and looked for.

    `$KERASREG_DATA_DIR` if set, else TFDS's own default
    (`$TFDS_DATA_DIR`, else `~/tensorflow_datasets`), so datasets already
    prepared with `tfds build` are found without configuration.

    Returns:
        An absolute path, as a str.

    Example:

    >>> import os
    >>> os.path.isabs(default_data_dir())
    True
    """
    data_dir = os.environ.get(_DATA_DIR_ENV) or os.environ.get(_TFDS_DATA_DIR_ENV)
    return resolve_data_dir(data_dir or os.path.join("~", "tensorflow_datasets"))


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    validation_split: float = VALIDATION_SPLIT,
    seed: int = 0,
    download: bool = False,
    standardize: bool = False,
    source: str | os.PathLike | None = None,
) -> Dataset:
    """Load a classification dataset as train/val/test splits.

    Built-in datasets (`mnist1d`, `digits`, `mnist5k`) are generated locally and
    prepared into `data_dir` on first use (a few seconds, announced on
    stderr); later loads read them back through TFDS. Any other TFDS dataset
    loads when already prepared in `data_dir`; otherwise this fails at once
    with `DatasetNotPreparedError` unless `download=True`. GCS is never tried.

    Validation examples are drawn from train with `seed`, never from test; the
    same seed always gives the same split.

    An imported dataset that another process replaces meanwhile (`import_dataset(...,
    overwrite=True)`) loads as the old dataset or the new one, whole; a later call
    reads the newer import.

    Args:
        name: str. A built-in name (see `list_datasets`) or a TFDS name such
            as `"mnist"`, `"fashion_mnist"` or `"cifar10"`.
        data_dir: str or path-like or None. Where datasets are prepared.
            Defaults to `None`, meaning `default_data_dir()`.
        validation_split: float. Fraction of train held out for validation,
            strictly between 0 and 1. Defaults to `0.1`.
        seed: int. Seed choosing the validation examples. Defaults to `0`.
        download: bool. Allow TFDS to download and prepare a dataset that is
            not prepared yet (needs internet). Defaults to `False`.
        standardize: bool. Subtract the mean and divide by the standard
            deviation of the training part (after validation is carved off),
            per last-axis feature. Defaults to `False`.
        source: str or path-like or None. For an imported dataset, the file
            or folder it was imported from: its sha256 must still match the
            one recorded at import. Defaults to `None` (not checked).

    Returns:
        A `Dataset`.

    Raises:
        ValueError: for an unknown name (with the closest match) or an
            invalid argument.
        DatasetNotPreparedError: if a TFDS dataset is not prepared in
            `data_dir` and `download` is `False`.

    Example:

    >>> ds = load_dataset("mnist1d", validation_split=0.1, seed=0)
    >>> ds.sizes
    {'train': 3600, 'val': 400, 'test': 1000}
    """
    if not isinstance(name, str) or not name:
        raise _checks.invalid("name", "a dataset name (a non-empty str)", name)
    check_validation_split(validation_split)
    _checks.seed(seed)
    data_dir = resolve_data_dir(data_dir)
    raw = _load_raw(name, data_dir, download=download)
    if source is not None:
        check_source(name, raw.record, source)

    train_index, val_index = carve_validation(len(raw.y_train), validation_split, seed, name)
    x_train, y_train = raw.x_train[train_index], raw.y_train[train_index]
    x_val, y_val = raw.x_train[val_index], raw.y_train[val_index]
    x_test, y_test = raw.x_test.copy(), raw.y_test.copy()

    mean = std = None
    if standardize:
        mean, std = _fit_standardization(x_train)
        x_train, x_val, x_test = ((x - mean) / std for x in (x_train, x_val, x_test))

    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        num_classes=raw.num_classes,
        class_names=raw.class_names,
        info=raw.info,
        data_dir=data_dir,
        split_seed=int(seed),
        validation_split=float(validation_split),
        mean=mean,
        std=std,
        source_sha256=(raw.record or {}).get("sha256"),
    )


def forget_loaded(name, data_dir):
    """Drop the in-process copy of dataset `name`, so the next load reads its files again (after a rebuild)."""
    _RAW_CACHE.pop((name, resolve_data_dir(data_dir)), None)


def _load_raw(name, data_dir, *, download):
    key = (name, data_dir)
    raw = _RAW_CACHE.get(key)
    # An import by another process since the last read is a new version folder: read that one.
    if raw is None or raw.folder != current_folder(name, data_dir):
        with reading(name, data_dir) as folder:
            builder = _prepared_builder(name, folder, download=download)
            raw = _RAW_CACHE[key] = _read_builder(name, builder, data_dir, folder)
    return raw


def _prepared_builder(name, data_dir, *, download):
    """Return a TFDS builder whose data is on disk, preparing it if allowed."""
    builder = make_builder(name, data_dir)
    if is_prepared(builder):
        return builder
    if name in BUILTINS:
        return _prepare(name, data_dir, quiet=True)
    if not download:
        raise DatasetNotPreparedError(not_prepared_message(name, builder, data_dir))
    return _prepare(name, data_dir, quiet=False)


def make_builder(name, data_dir):
    with quiet_absl():
        if name in BUILTINS:
            return BUILTINS[name](data_dir=data_dir)
        try:
            return tfds.builder(name, data_dir=data_dir, try_gcs=False)
        except tfds.core.DatasetNotFoundError:
            raise ValueError(_unknown_name_message(name, data_dir)) from None


def rebuild_dataset(name, *, data_dir=None):
    """Delete a built-in dataset's prepared files and generate them again (after `DatasetDamagedError`).

    Only built-in datasets can be rebuilt here: their data is generated
    locally, in seconds. Other TFDS datasets are prepared again with `tfds build`.

    Args:
        name: str. A built-in dataset name, e.g. `"mnist1d"`.
        data_dir: str or path-like or None. Defaults to `None`, meaning `default_data_dir()`.

    Example:

    >>> rebuild_dataset("mnist1d", data_dir="/tmp/kerasreg_doc_data")  # doctest: +SKIP
    """
    if name not in BUILTINS:
        raise _checks.invalid("name", f"a built-in dataset ({', '.join(sorted(BUILTINS))}); other datasets are "
                              "prepared again with `tfds build`", name)
    data_dir = resolve_data_dir(data_dir)
    forget_loaded(name, data_dir)
    _prepare(name, data_dir, quiet=True, rebuild=True)


def _prepare(name, data_dir, *, quiet, rebuild=False):
    """Run TFDS preparation once, even with several processes racing for it."""
    os.makedirs(data_dir, exist_ok=True)
    lock_name = ".kerasreg-" + re.sub(r"[^\w.-]", "_", name) + ".lock"
    with Lock(os.path.join(data_dir, lock_name), f"Dataset {name!r} in {data_dir}", wait=True):
        # Another process may have finished while we waited; a fresh builder
        # reads its files instead of generating them again.
        builder = make_builder(name, data_dir)
        if rebuild:
            shutil.rmtree(builder.data_dir, ignore_errors=True)
            builder = make_builder(name, data_dir)
        elif is_prepared(builder):
            return builder
        action = "generating" if quiet else "downloading and preparing"
        print(
            f"kerasreg: {action} dataset {name!r} in {data_dir} ({'rebuild' if rebuild else 'first use only'})...",
            file=sys.stderr,
            flush=True,
        )
        # try_download_gcs=False: without it TFDS probes a GCS bucket first,
        # which on a machine without internet stalls for minutes.
        config = tfds.download.DownloadConfig(try_download_gcs=False)
        # TFDS prints progress bars and banners; for a few-second local build
        # the one line above says enough, and stdout stays clean for the CLI.
        output = silenced() if quiet else contextlib.redirect_stdout(sys.stderr)
        with output, quiet_absl():
            try:
                builder.download_and_prepare(download_config=config)
            except Exception as exc:  # TFDS wraps a full disk or a size limit in RuntimeError or OpError text
                error = os_error_from_text(str(exc), os.path.join(data_dir, builder.name))
                if error is None:
                    raise
                raise error from None
        return builder


def _read_builder(name, builder, data_dir, folder):
    """Read a prepared dataset (from `folder`, a version of it in `data_dir`) into memory: float32 inputs, int32 labels."""
    info = builder.info
    if not info.supervised_keys:
        raise ValueError(
            f"Dataset {name!r} has no supervised keys (input, label), so it cannot "
            "be used for classification by kerasreg."
        )
    input_key, label_key = info.supervised_keys[:2]
    label_feature = info.features[label_key]
    if not isinstance(label_feature, tfds.features.ClassLabel):
        raise ValueError(
            f"Dataset {name!r} has labels {label_key!r} of type "
            f"{type(label_feature).__name__}; kerasreg needs class labels (ClassLabel)."
        )
    train_split, test_split = _train_test_split_names(name, info)
    x_train, y_train = _read_split(builder, train_split, name, data_dir)
    x_test, y_test = _read_split(builder, test_split, name, data_dir)
    return _Raw(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=int(label_feature.num_classes),
        class_names=tuple(label_feature.names),
        info=info,
        record=import_record(info),
        folder=folder,
    )


def _train_test_split_names(name, info):
    available = sorted(info.splits.keys())
    if "train" not in available:
        raise ValueError(
            f"Dataset {name!r} has no 'train' split. Available splits: {', '.join(available)}."
        )
    # Datasets without a public test split publish "validation" as their
    # held-out set; validation for training is carved from train either way.
    for candidate in ("test", "validation"):
        if candidate in available:
            return "train", candidate
    raise ValueError(
        f"Dataset {name!r} has no 'test' or 'validation' split to evaluate on. "
        f"Available splits: {', '.join(available)}."
    )


def _read_split(builder, split, name, data_dir):
    import tensorflow as tf

    try:
        # quiet_absl: TFDS's decoder of byte-encoded tensors warns about a deprecated field it uses itself.
        with quiet_absl():
            pairs = builder.as_dataset(split=split, batch_size=-1, as_supervised=True)
            x, y = tfds.as_numpy(pairs)
    except tf.errors.OpError:  # TFDS's count check, a record's CRC, a missing shard
        raise DatasetDamagedError(damaged_message(name, builder, split, data_dir)) from None
    if len(y) != builder.info.splits[split].num_examples:
        raise DatasetDamagedError(damaged_message(name, builder, split, data_dir))
    x, y = float_inputs(x, name), np.asarray(y, np.int32)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _fit_standardization(x):
    """Per last-axis mean and std of `x`; constant features get std 1."""
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes, dtype=np.float64)
    std = x.std(axis=axes, dtype=np.float64)
    # A feature constant on train (e.g. a blank border pixel) would otherwise
    # blow up any test value that differs from it.
    std = np.where(std < 1e-7, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


def _damaged_file(builder, split):
    """The first record file of `split` that is unreadable or short, and what is wrong with it."""
    import tensorflow as tf

    info = builder.info.splits[split]
    for path, expected in zip(info.filepaths, info.shard_lengths):
        count = 0
        try:
            for _ in tf.data.TFRecordDataset(os.fspath(path)):
                count += 1
        except tf.errors.OpError as exc:
            # TensorFlow wraps the reason ("truncated record at 430000") in op names.
            reason = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*", "", exc.message.splitlines()[0])
            return os.fspath(path), f"unreadable after record {count}: {reason}"
        if count != expected:
            return os.fspath(path), f"{count} of its {expected} records"
    return os.fspath(builder.data_dir), f"split {split!r} does not match dataset_info.json"


def damaged_message(name, builder, split, data_dir):
    """What is damaged in a prepared dataset of `data_dir` and how to rebuild it."""
    path, problem = _damaged_file(builder, split)
    record = import_record(builder.info)
    if name in BUILTINS:
        remedy = (f"rebuild it with `--rebuild-data` (kerasreg train or study), or "
                  f"kerasreg.data.rebuild_dataset({name!r}, data_dir={data_dir!r})")
    elif record:
        remedy = (f"import it again from {record['source']} (`kerasreg data import {shlex.quote(name)} SOURCE "
                  f"--overwrite --data-dir {shlex.quote(data_dir)}`, with the options of the first import)")
    else:
        remedy = (f"remove {os.fspath(builder.data_dir)} and prepare it again (`tfds build {shlex.quote(name)} "
                  f"--data_dir {shlex.quote(data_dir)}`, or `kerasreg data import` for an imported dataset)")
    return f"Dataset {name!r} in {data_dir} is damaged ({path}: {problem}): {remedy}."


def not_prepared_message(name, builder, data_dir):
    dataset = name.split("/")[0].split(":")[0]
    return (
        f"Dataset {name!r} is not prepared in {data_dir} (looked for {builder.data_dir}) "
        "and downloads are off. Prepare it on a machine with internet with "
        f"`tfds build {shlex.quote(name)} --data_dir {shlex.quote(data_dir)}` and copy "
        f"{os.path.join(data_dir, dataset)} to the same place here, or call "
        f"load_dataset({name!r}, download=True) where the internet is reachable. "
        f"(data_dir defaults to ${_DATA_DIR_ENV}, else ${_TFDS_DATA_DIR_ENV}, else "
        "~/tensorflow_datasets.)"
    )


def _unknown_name_message(name, data_dir):
    builtins = sorted(BUILTINS)
    prepared = [listed_name for listed_name, _, _ in prepared_variants(data_dir)]
    candidates = builtins + prepared + tfds.list_builders(with_community_datasets=False)
    close = difflib.get_close_matches(name, candidates, n=1)
    suggestion = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"Unknown dataset {name!r}.{suggestion} Built-in datasets: {', '.join(builtins)}. "
        f"Any TFDS dataset prepared in {data_dir} also works."
    )


def check_validation_split(validation_split):
    """Raise a ValueError unless `validation_split` is a number strictly between 0 and 1.

    Example:

    >>> check_validation_split(0.1)
    0.1
    """
    return _checks.fraction(validation_split, "validation_split")


def resolve_data_dir(data_dir):
    if data_dir is None:
        return default_data_dir()
    path = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if os.path.exists(path) and not os.path.isdir(path):
        raise _checks.invalid("data_dir", "a directory (it is a file)", os.fspath(data_dir))
    return path


def is_prepared(builder):
    with quiet_absl():
        return builder.is_prepared()


@contextlib.contextmanager
def quiet_absl():
    """Hide TFDS's absl warnings about absent folders while we probe for them (and its noise while reading).

    TFDS warns "Variant folder ... has no dataset_info.json" whenever it looks
    at an unprepared dataset; kerasreg reports that case itself, clearly.
    """
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def silenced():
    """Send stdout and stderr to /dev/null (TFDS prints banners and bars while it writes)."""
    with open(os.devnull, "w") as devnull:
        with contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):
            yield


def prepared_variants(data_dir):
    """`(name, version, directory)` of every TFDS dataset variant prepared in `data_dir`.

    Layouts `<name>/<version>/` and `<name>/<config>/<version>/` are found by
    their `dataset_info.json`; built-ins, `downloads/` and hidden folders are left out.

    Example:

    >>> list(prepared_variants("/nonexistent"))
    []
    """
    if not os.path.isdir(data_dir):
        return
    for entry in sorted(os.listdir(data_dir)):
        dataset_dir = os.path.join(data_dir, entry)
        # Hidden entries are imports being written or replaced (kerasreg.data.importing).
        if entry in BUILTINS or entry == "downloads" or entry.startswith(".") or not os.path.isdir(dataset_dir):
            continue
        for root, _, files in os.walk(dataset_dir):
            version = os.path.basename(root)
            if "dataset_info.json" in files and tfds.core.Version.is_valid(version):
                relative = os.path.relpath(os.path.dirname(root), data_dir)
                yield relative.replace(os.sep, "/"), version, root
