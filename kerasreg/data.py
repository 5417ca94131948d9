"""Datasets as `tf.data` splits, with TensorFlow Datasets underneath.

Every dataset goes through TFDS: the two built-ins are TFDS builders
(`tfds.core.GeneratorBasedBuilder`) that generate their data locally, so they
are prepared into `data_dir` on first use and read back through TFDS like any
other dataset. Any other TFDS dataset (`mnist`, `fashion_mnist`, `cifar10`,
...) works once it is prepared in `data_dir`. Nothing downloads unless asked
to, and GCS is never tried, so an unprepared dataset fails in well under a
second instead of stalling on a network that is not there.

Built-in datasets:

- `mnist1d`: MNIST-1D from Greydanus, "Scaling Down Deep Learning",
  arXiv:2011.14439 (2020), generated with the `mnist1d` package and its
  standard arguments: 4000 train / 1000 test signals of length 40, 10 classes.
- `digits`: scikit-learn's copy of the UCI optical handwritten digits
  (Alpaydin and Kaynak, 1998): 1797 images of 8x8x1 in [0, 1], 10 classes,
  split 1347 train / 450 test with a fixed seed.

Validation is carved from train with a seed, never from test, and
standardization statistics come from the training part only, so nothing about
validation or test leaks into what the model is fitted on.
"""

import contextlib
import dataclasses
import difflib
import fnmatch
import logging
import os
import random
import re
import shlex
import sys

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

try:
    import fcntl
except ImportError:  # Windows: TFDS still writes atomically, just without a lock.
    fcntl = None

SPLITS = ("train", "val", "test")
_DATA_DIR_ENV = "KERASREG_DATA_DIR"
_TFDS_DATA_DIR_ENV = "TFDS_DATA_DIR"


class DatasetNotPreparedError(FileNotFoundError):
    """A TFDS dataset is not prepared in `data_dir` and downloads are off.

    A `FileNotFoundError` because that is what happened: the prepared files
    are not on disk. The message names the dataset, the directory searched
    and how to prepare it.
    """


# ---------------------------------------------------------------------------
# Built-in datasets: TFDS builders that need no network.
# ---------------------------------------------------------------------------


class Mnist1d(tfds.core.GeneratorBasedBuilder):
    """MNIST-1D (Greydanus 2020) as a TFDS dataset, generated locally.

    Uses `mnist1d.data.make_dataset` with `mnist1d.data.get_dataset_args()`,
    the arguments behind the paper's published data: 4000 train and 1000 test
    float32 signals of length 40, labels 0-9. The package's `get_dataset`
    would try to download a pickle first, so it is never called.

    Example:

    >>> builder = Mnist1d(data_dir="/tmp/kerasreg_doc_data")
    >>> builder.info.features["signal"].shape
    (40,)
    """

    name = "mnist1d"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "MNIST-1D with the mnist1d package's standard arguments."}

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "MNIST-1D (Greydanus 2020): 4000 train / 1000 test signals of length 40, "
                "10 classes.\n\nA small benchmark that, unlike MNIST, separates "
                "architectures and regularisers clearly. Generated locally with the "
                "mnist1d package's standard arguments."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "signal": tfds.features.Tensor(shape=(40,), dtype=np.float32),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("signal", "label"),
            # Keep the generator's order so the splits match the paper's data.
            disable_shuffling=True,
            homepage="https://github.com/greydanus/mnist1d",
            citation=(
                "@article{greydanus2020scaling,\n"
                "  title={Scaling Down Deep Learning},\n"
                "  author={Greydanus, Sam},\n"
                "  journal={arXiv preprint arXiv:2011.14439},\n"
                "  year={2020}\n}"
            ),
        )

    def _split_generators(self, dl_manager):
        # One generator call makes both splits, as in the paper's data.
        data = _make_mnist1d()
        return {
            "train": self._generate_examples(data["x"], data["y"]),
            "test": self._generate_examples(data["x_test"], data["y_test"]),
        }

    def _generate_examples(self, x, y):
        for index, (signal, label) in enumerate(zip(x, y)):
            yield index, {"signal": np.asarray(signal, np.float32), "label": int(label)}


class Digits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's 8x8 handwritten digits as a TFDS dataset.

    The 1797 images ship with scikit-learn, so nothing is downloaded. Pixels
    (0-16 in the source) are scaled to float32 in [0, 1], shaped 8x8x1
    (channels-last). The train/test split is stratified and fixed
    (`random_state=0`): 1347 train / 450 test.

    Example:

    >>> builder = Digits(data_dir="/tmp/kerasreg_doc_data")
    >>> builder.info.features["image"].shape
    (8, 8, 1)
    """

    name = "digits"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "scikit-learn digits, stratified 75/25 split, seed 0."}

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "scikit-learn's 8x8 handwritten digits (UCI): 1347 train / 450 test, "
                "10 classes.\n\nThe optical recognition of handwritten digits data "
                "as bundled with scikit-learn, scaled to [0, 1], with a fixed "
                "stratified train/test split (random_state=0)."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.float32),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            disable_shuffling=True,
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html",
            citation=(
                "@misc{alpaydin1998optical,\n"
                "  title={Optical Recognition of Handwritten Digits},\n"
                "  author={Alpaydin, E. and Kaynak, C.},\n"
                "  howpublished={UCI Machine Learning Repository},\n"
                "  year={1998}\n}"
            ),
        )

    def _split_generators(self, dl_manager):
        # scikit-learn is only needed the one time the data is generated.
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        x = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
        x_train, x_test, y_train, y_test = train_test_split(
            x, digits.target, test_size=450, stratify=digits.target, random_state=0
        )
        return {
            "train": self._generate_examples(x_train, y_train),
            "test": self._generate_examples(x_test, y_test),
        }

    def _generate_examples(self, x, y):
        for index, (image, label) in enumerate(zip(x, y)):
            yield index, {"image": image, "label": int(label)}


_BUILTINS = {"digits": Digits, "mnist1d": Mnist1d}


def _make_mnist1d():
    """Generate MNIST-1D without disturbing the caller's random state."""
    import mnist1d.data  # Imported here: it pulls in matplotlib, needed only once.

    # make_dataset seeds the global `random` and `np.random` generators; a
    # study that seeded them itself must not have that silently reset.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        return mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


# ---------------------------------------------------------------------------
# The loaded dataset.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class Dataset:
    """A classification dataset split into train, validation and test.

    Arrays live in memory; `.train`, `.val` and `.test` are unbatched
    `tf.data.Dataset`s of `(x, y)` pairs built from them, and `.pipeline()`
    is the batched, shuffled, prefetched pipeline to train on. Inputs are
    float32 (images in [0, 1], channels-last, unless standardized); labels are
    int32 class indices (sparse labels).

    Measure overfitting gaps on `.val` (carved from train with `split_seed`)
    and keep `.test` for the final number.

    Args:
        name: str. The dataset name given to `load_dataset`.
        x_train, y_train, x_val, y_val, x_test, y_test: np.ndarray. The splits.
        num_classes: int. Number of classes.
        class_names: tuple of str. Name of each class index.
        info: `tfds.core.DatasetInfo`. TFDS metadata (features, citation, ...).
        data_dir: str. Where the prepared TFDS files are.
        split_seed: int. Seed that chose the validation examples.
        validation_split: float. Fraction of train held out for validation.
        mean, std: np.ndarray or None. Standardization statistics fitted on the
            training part (over every axis but the last, as
            `keras.layers.Normalization` does), or `None` when not standardized.

    Example:

    >>> ds = load_dataset("mnist1d")
    >>> ds.input_shape, ds.num_classes
    ((40,), 10)
    >>> x, y = ds.as_numpy("val")
    >>> for x_batch, y_batch in ds.pipeline("train", batch_size=100, shuffle=True, seed=0).take(1):
    ...     print(x_batch.shape, y_batch.shape)
    (100, 40) (100,)
    """

    name: str
    x_train: np.ndarray = dataclasses.field(repr=False)
    y_train: np.ndarray = dataclasses.field(repr=False)
    x_val: np.ndarray = dataclasses.field(repr=False)
    y_val: np.ndarray = dataclasses.field(repr=False)
    x_test: np.ndarray = dataclasses.field(repr=False)
    y_test: np.ndarray = dataclasses.field(repr=False)
    num_classes: int
    class_names: tuple = dataclasses.field(repr=False)
    info: tfds.core.DatasetInfo = dataclasses.field(repr=False)
    data_dir: str
    split_seed: int
    validation_split: float
    mean: np.ndarray | None = dataclasses.field(default=None, repr=False)
    std: np.ndarray | None = dataclasses.field(default=None, repr=False)

    @property
    def input_shape(self):
        """Shape of one input example, without the batch axis, e.g. `(40,)`."""
        return tuple(self.x_train.shape[1:])

    @property
    def standardized(self):
        """Whether inputs were standardized with training-part statistics."""
        return self.mean is not None

    @property
    def sizes(self):
        """Number of examples per split, as `{"train": ..., "val": ..., "test": ...}`."""
        return {split: len(self.as_numpy(split)[1]) for split in SPLITS}

    @property
    def train(self):
        """Unbatched `tf.data.Dataset` of `(x, y)` training pairs (validation excluded)."""
        return tf.data.Dataset.from_tensor_slices(self.as_numpy("train"))

    @property
    def val(self):
        """Unbatched `tf.data.Dataset` of `(x, y)` validation pairs."""
        return tf.data.Dataset.from_tensor_slices(self.as_numpy("val"))

    @property
    def test(self):
        """Unbatched `tf.data.Dataset` of `(x, y)` test pairs."""
        return tf.data.Dataset.from_tensor_slices(self.as_numpy("test"))

    def as_numpy(self, split):
        """Return one split as numpy arrays.

        Args:
            split: str. One of `"train"`, `"val"`, `"test"`.

        Returns:
            A tuple `(x, y)`: float32 inputs and int32 labels.

        Example:

        >>> x, y = load_dataset("digits").as_numpy("test")
        >>> x.shape, y.shape
        ((450, 8, 8, 1), (450,))
        """
        _check_split(split)
        return getattr(self, f"x_{split}"), getattr(self, f"y_{split}")

    def pipeline(
        self,
        split,
        batch_size=32,
        *,
        shuffle=None,
        seed=None,
        initial_epoch=0,
        drop_remainder=False,
    ):
        """Return the batched input pipeline for one split.

        Built for small in-memory data. Unshuffled, batches are sliced from
        memory once, cached and prefetched. Shuffled, each pass over the
        pipeline is one epoch whose order is a stateless function of
        `(seed, epoch)`: two runs with the same seed see the same batches in
        the same order, and a run resumed at `initial_epoch` sees exactly the
        batches an uninterrupted run would have seen from that epoch on.

        Args:
            split: str. One of `"train"`, `"val"`, `"test"`.
            batch_size: int. Examples per batch. Defaults to `32`.
            shuffle: bool or None. Reshuffle every epoch. `None` shuffles only
                `"train"`. Defaults to `None`.
            seed: int or None. Shuffle seed; `None` uses `split_seed`.
                Defaults to `None`.
            initial_epoch: int. Epoch index of the first pass (as in
                `Model.fit(initial_epoch=...)`); only the shuffle order
                depends on it. Defaults to `0`.
            drop_remainder: bool. Drop a last batch smaller than `batch_size`
                (BatchNormalization statistics of a tiny batch are noisy).
                Defaults to `False`.

        Returns:
            A `tf.data.Dataset` of `(x, y)` batches with known cardinality
            (batches per epoch).

        Example:

        >>> ds = load_dataset("mnist1d")
        >>> train = ds.pipeline("train", batch_size=100, shuffle=True, seed=0)
        >>> val = ds.pipeline("val", batch_size=500, shuffle=False)
        >>> int(train.cardinality()), int(val.cardinality())
        (36, 1)
        """
        x, y = self.as_numpy(split)
        _check_positive_int("batch_size", batch_size)
        _check_seed(initial_epoch, argument="initial_epoch")
        if shuffle is None:
            shuffle = split == "train"
        if seed is None:
            seed = self.split_seed
        _check_seed(seed)
        if shuffle:
            batches = _shuffled_batches(x, y, batch_size, seed, initial_epoch, drop_remainder)
        else:
            batches = tf.data.Dataset.from_tensor_slices((x, y))
            batches = batches.batch(batch_size, drop_remainder=drop_remainder).cache()
        return batches.prefetch(tf.data.AUTOTUNE)

    def describe(self):
        """Return a short human-readable summary of the loaded splits.

        Example:

        >>> print(load_dataset("digits").describe())  # doctest: +ELLIPSIS
        Dataset 'digits' ...
        """
        sizes = self.sizes
        return "\n".join(
            [
                f"Dataset {self.name!r} ({_source(self.name)}) from {self.data_dir}",
                f"  input: shape {self.input_shape}, {self.x_train.dtype}; "
                f"{self.num_classes} classes",
                f"  train {sizes['train']} / val {sizes['val']} / test {sizes['test']} "
                f"(validation_split={self.validation_split} of train, seed {self.split_seed})",
                "  standardized with training-part mean/std"
                if self.standardized
                else "  not standardized",
            ]
        )


def _shuffled_batches(x, y, batch_size, seed, initial_epoch, drop_remainder):
    """Batches reshuffled every pass; pass k is epoch `initial_epoch + k`.

    `Dataset.shuffle(reshuffle_each_iteration=True)` draws each pass's order
    from a generator that counts iterators, and Keras creates one or two
    iterators per epoch depending on `steps_per_epoch`, so a resumed run
    could not replay the orders of an uninterrupted one. Here the order of
    epoch `e` is `stateless_shuffle(seed=(seed, e))`, and a counter advanced
    when a pass requests its first batch supplies `e`.

    Each epoch is gathered once and cut into batches with a reshape, so the
    pipeline handles one element per batch rather than one per example: as
    fast as a cached `shuffle().batch()` on data this small.
    """
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    num_examples = int(y.shape[0])
    num_full = num_examples // batch_size
    remainder = 0 if drop_remainder else num_examples - num_full * batch_size
    cut = num_full * batch_size
    epoch = tf.Variable(initial_epoch, dtype=tf.int64, trainable=False)

    def shuffled_epoch(_):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(num_examples),
            seed=tf.stack([tf.constant(seed, tf.int64), epoch.assign_add(1) - 1]),
        )
        xs, ys = tf.gather(x, order), tf.gather(y, order)
        full = (
            tf.reshape(xs[:cut], (num_full, batch_size, *x.shape[1:])),
            tf.reshape(ys[:cut], (num_full, batch_size)),
        )
        return (full, (xs[cut:], ys[cut:])) if remainder else full

    def cut_batches(full, rest):
        return tf.data.Dataset.from_tensor_slices(full).concatenate(tf.data.Dataset.from_tensors(rest))

    epochs = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(shuffled_epoch)
    # unbatch splits an epoch without building a dataset per pass (faster);
    # a last short batch needs the slower flat_map.
    batches = epochs.flat_map(cut_batches) if remainder else epochs.unbatch()
    # The cardinality is lost on the way; Keras needs it to start a new pass
    # each epoch when fit() is given steps_per_epoch.
    num_batches = num_full + (1 if remainder else 0)
    return batches.apply(tf.data.experimental.assert_cardinality(num_batches))


# ---------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Raw:
    """Train/test arrays as read from TFDS, shared by every load in a process."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple
    info: tfds.core.DatasetInfo


# Studies and tests call load_dataset many times per process; reading the
# TFDS files once per (name, data_dir) makes every later call near free.
_RAW_CACHE = {}


def default_data_dir():
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
    return _resolve_data_dir(data_dir or os.path.join("~", "tensorflow_datasets"))


def load_dataset(
    name,
    *,
    data_dir=None,
    validation_split=0.1,
    seed=0,
    download=False,
    standardize=False,
):
    """Load a classification dataset as train/val/test splits.

    Built-in datasets (`mnist1d`, `digits`) are generated locally and
    prepared into `data_dir` on first use (a few seconds, announced on
    stderr); later loads read them back through TFDS. Any other TFDS dataset
    loads when already prepared in `data_dir`; otherwise this fails at once
    with `DatasetNotPreparedError` unless `download=True`. GCS is never tried.

    Validation examples are drawn from train with `seed`, never from test; the
    same seed always gives the same split.

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
        raise ValueError(
            "Invalid value received for argument `name`. Expected a dataset name "
            f"(a non-empty str). Received: name={name!r}"
        )
    check_validation_split(validation_split)
    _check_seed(seed)
    data_dir = _resolve_data_dir(data_dir)
    raw = _load_raw(name, data_dir, download=download)

    train_index, val_index = _carve_validation(len(raw.y_train), validation_split, seed, name)
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
    )


def _load_raw(name, data_dir, *, download):
    key = (name, data_dir)
    if key not in _RAW_CACHE:
        builder = _prepared_builder(name, data_dir, download=download)
        _RAW_CACHE[key] = _read_builder(name, builder)
    return _RAW_CACHE[key]


def _prepared_builder(name, data_dir, *, download):
    """Return a TFDS builder whose data is on disk, preparing it if allowed."""
    builder = _make_builder(name, data_dir)
    if _is_prepared(builder):
        return builder
    if name in _BUILTINS:
        return _prepare(name, data_dir, quiet=True)
    if not download:
        raise DatasetNotPreparedError(_not_prepared_message(name, builder, data_dir))
    return _prepare(name, data_dir, quiet=False)


def _make_builder(name, data_dir):
    with _quiet_absl():
        if name in _BUILTINS:
            return _BUILTINS[name](data_dir=data_dir)
        try:
            return tfds.builder(name, data_dir=data_dir, try_gcs=False)
        except tfds.core.DatasetNotFoundError:
            raise ValueError(_unknown_name_message(name, data_dir)) from None


def _prepare(name, data_dir, *, quiet):
    """Run TFDS preparation once, even with several processes racing for it."""
    os.makedirs(data_dir, exist_ok=True)
    lock_name = ".kerasreg-" + re.sub(r"[^\w.-]", "_", name) + ".lock"
    with _exclusive_lock(os.path.join(data_dir, lock_name)):
        # Another process may have finished while we waited; a fresh builder
        # reads its files instead of generating them again.
        builder = _make_builder(name, data_dir)
        if _is_prepared(builder):
            return builder
        action = "generating" if quiet else "downloading and preparing"
        print(
            f"kerasreg: {action} dataset {name!r} in {data_dir} (first use only)...",
            file=sys.stderr,
            flush=True,
        )
        # try_download_gcs=False: without it TFDS probes a GCS bucket first,
        # which on a machine without internet stalls for minutes.
        config = tfds.download.DownloadConfig(try_download_gcs=False)
        # TFDS prints progress bars and banners; for a few-second local build
        # the one line above says enough, and stdout stays clean for the CLI.
        output = _silenced() if quiet else contextlib.redirect_stdout(sys.stderr)
        with output, _quiet_absl():
            builder.download_and_prepare(download_config=config)
        return builder


def _read_builder(name, builder):
    """Read a prepared dataset fully into memory as float32 inputs and int32 labels."""
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
    x_train, y_train = _read_split(builder, train_split, name)
    x_test, y_test = _read_split(builder, test_split, name)
    return _Raw(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=int(label_feature.num_classes),
        class_names=tuple(label_feature.names),
        info=info,
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


def _read_split(builder, split, name):
    pairs = builder.as_dataset(split=split, batch_size=-1, as_supervised=True)
    x, y = tfds.as_numpy(pairs)
    x, y = _to_float_inputs(x, name), np.asarray(y, np.int32)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _to_float_inputs(x, name):
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype.kind in "biuf":
        return x.astype(np.float32)
    raise ValueError(
        f"Dataset {name!r} has inputs of dtype {x.dtype}; kerasreg needs numeric "
        "inputs (images, signals or feature vectors)."
    )


def _carve_validation(num_examples, validation_split, seed, name):
    """Split train indices into (train, val) with a seeded permutation."""
    num_val = int(round(num_examples * validation_split))
    if not 0 < num_val < num_examples:
        raise ValueError(
            "Invalid value received for argument `validation_split`. It must leave at "
            f"least one example for validation and one for training out of the "
            f"{num_examples} training examples of {name!r}. "
            f"Received: validation_split={validation_split}"
        )
    order = np.random.default_rng(seed).permutation(num_examples)
    # Sorted so both parts keep the source order; pipelines shuffle anyway.
    return np.sort(order[num_val:]), np.sort(order[:num_val])


def _fit_standardization(x):
    """Per last-axis mean and std of `x`; constant features get std 1."""
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes, dtype=np.float64)
    std = x.std(axis=axes, dtype=np.float64)
    # A feature constant on train (e.g. a blank border pixel) would otherwise
    # blow up any test value that differs from it.
    std = np.where(std < 1e-7, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


# ---------------------------------------------------------------------------
# Listing and describing, for `kerasreg data list` / `kerasreg data info`.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DatasetListing:
    """One row of `list_datasets`.

    Args:
        name: str. Name to pass to `load_dataset`.
        source: str. `"built-in"` (generated locally) or `"tfds"`.
        prepared: bool. Whether its files are already in `data_dir`.
        version: str or None. Prepared (or, if not prepared, to-be-prepared) version.
        path: str or None. Directory of the prepared files.
        description: str. One-line description.
    """

    name: str
    source: str
    prepared: bool
    version: str | None
    path: str | None
    description: str


def list_datasets(filter="*", *, data_dir=None):
    """List built-in datasets and TFDS datasets prepared in `data_dir`.

    Nothing is prepared or downloaded. Built-ins are always listed (they are
    generated on first load); other TFDS datasets only when prepared.

    Args:
        filter: str. fnmatch pattern on names, e.g. `"*mnist*"`. Defaults to `"*"`.
        data_dir: str or path-like or None. Where to look. Defaults to `None`,
            meaning `default_data_dir()`.

    Returns:
        A list of `DatasetListing`, sorted by name.

    Example:

    >>> [listing.name for listing in list_datasets()][:2]
    ['digits', 'mnist1d']
    """
    data_dir = _resolve_data_dir(data_dir)
    listings = [_builtin_listing(name, data_dir) for name in _BUILTINS]
    listings += _prepared_tfds_listings(data_dir)
    return sorted(
        (item for item in listings if fnmatch.fnmatch(item.name, filter)),
        key=lambda item: item.name,
    )


def format_dataset_list(listings, *, data_dir=None):
    """Format `list_datasets` output as the table `kerasreg data list` prints.

    Args:
        listings: list of `DatasetListing`.
        data_dir: str or path-like or None. Directory named in the footer.
            Defaults to `None`, meaning `default_data_dir()`.

    Returns:
        A multi-line str.

    Example:

    >>> print(format_dataset_list(list_datasets()))  # doctest: +ELLIPSIS
    name ...
    """
    data_dir = _resolve_data_dir(data_dir)
    rows = [("name", "source", "status", "version", "description")]
    for item in listings:
        if item.prepared:
            status = "prepared"
        else:
            status = "on first use" if item.source == "built-in" else "not prepared"
        rows.append((item.name, item.source, status, item.version or "-", item.description))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4]
             for row in rows]
    lines.append(f"data_dir: {data_dir}")
    return "\n".join(line.rstrip() for line in lines)


def dataset_info(name, *, data_dir=None):
    """Describe one dataset in readable text, without preparing or downloading it.

    Covers the source, whether and where it is prepared, features, classes,
    split sizes (when prepared), how validation is carved, homepage and
    citation; for an unprepared TFDS dataset, how to prepare it.

    Args:
        name: str. A built-in or TFDS dataset name.
        data_dir: str or path-like or None. Where to look. Defaults to `None`,
            meaning `default_data_dir()`.

    Returns:
        A multi-line str.

    Raises:
        ValueError: for an unknown name, with the closest match.

    Example:

    >>> print(dataset_info("mnist1d"))  # doctest: +ELLIPSIS
    mnist1d (built-in...
    """
    data_dir = _resolve_data_dir(data_dir)
    builder = _make_builder(name, data_dir)
    info = builder.info
    prepared = _is_prepared(builder)
    source = _source(name)
    status = "prepared" if prepared else "not prepared"
    lines = [f"{name} ({source}, {status}, version {builder.version})"]
    description = (info.description or "").strip().splitlines()
    lines.extend(f"  {line}".rstrip() for line in description)
    lines.append(f"  location: {builder.data_dir}")
    if info.supervised_keys:
        input_key, label_key = info.supervised_keys[:2]
        feature = info.features[input_key]
        dtype = np.dtype(feature.np_dtype)
        loaded_as = " (loaded as float32 in [0, 1])" if dtype == np.uint8 else ""
        lines.append(f"  input: {input_key!r}, shape {feature.shape}, {dtype}{loaded_as}")
        label_feature = info.features[label_key]
        if isinstance(label_feature, tfds.features.ClassLabel):
            names = ", ".join(label_feature.names[:20])
            more = ", ..." if label_feature.num_classes > 20 else ""
            lines.append(
                f"  label: {label_key!r}, {label_feature.num_classes} classes ({names}{more})"
            )
    if prepared:
        sizes = ", ".join(f"{split} {info.splits[split].num_examples}" for split in sorted(info.splits))
        lines.append(f"  splits: {sizes}")
        lines.append(
            "  validation: carved from train by load_dataset(validation_split=..., seed=...)"
        )
    elif source == "built-in":
        lines.append("  splits: generated locally on first load_dataset (a few seconds)")
    else:
        lines.append("  " + _not_prepared_message(name, builder, data_dir))
    if info.homepage:
        lines.append(f"  homepage: {info.homepage}")
    if info.citation:
        lines.append("  citation:")
        lines.extend("    " + line for line in info.citation.strip().splitlines())
    return "\n".join(lines)


def _builtin_listing(name, data_dir):
    builder = _make_builder(name, data_dir)
    prepared = _is_prepared(builder)
    return DatasetListing(
        name=name,
        source="built-in",
        prepared=prepared,
        version=str(builder.version),
        path=builder.data_dir if prepared else None,
        description=_first_line(builder.info.description),
    )


def _prepared_tfds_listings(data_dir):
    """TFDS datasets prepared in `data_dir`, found by their dataset_info.json files."""
    if not os.path.isdir(data_dir):
        return []
    found = {}
    for entry in sorted(os.listdir(data_dir)):
        dataset_dir = os.path.join(data_dir, entry)
        if entry in _BUILTINS or entry == "downloads" or not os.path.isdir(dataset_dir):
            continue
        # Layouts: <name>/<version>/ and <name>/<config>/<version>/.
        for root, _, files in os.walk(dataset_dir):
            version = os.path.basename(root)
            if "dataset_info.json" not in files or not tfds.core.Version.is_valid(version):
                continue
            relative = os.path.relpath(os.path.dirname(root), data_dir)
            listed_name = relative.replace(os.sep, "/")
            previous = found.get(listed_name)
            if previous is None or tfds.core.Version(version) > tfds.core.Version(previous.version):
                found[listed_name] = DatasetListing(
                    name=listed_name,
                    source="tfds",
                    prepared=True,
                    version=version,
                    path=root,
                    description=_description_from_files(root),
                )
    return list(found.values())


def _description_from_files(variant_dir):
    try:
        with _quiet_absl():
            info = tfds.builder_from_directory(variant_dir).info
        return _first_line(info.description)
    except Exception:  # A damaged directory must not break the whole listing.
        return ""


# ---------------------------------------------------------------------------
# Messages, argument checks and small helpers.
# ---------------------------------------------------------------------------


def _not_prepared_message(name, builder, data_dir):
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
    builtins = sorted(_BUILTINS)
    prepared = [item.name for item in _prepared_tfds_listings(data_dir)]
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
    """
    valid = (
        isinstance(validation_split, (float, int, np.floating, np.integer))
        and not isinstance(validation_split, (bool, np.bool_))
        and 0 < validation_split < 1
    )
    if not valid:
        raise ValueError(
            "Invalid value received for argument `validation_split`. Expected a float "
            f"in (0, 1). Received: validation_split={validation_split!r}"
        )


def _check_seed(value, argument="seed"):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(
            f"Invalid value received for argument `{argument}`. Expected a non-negative "
            f"integer. Received: {argument}={value!r}"
        )


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(
            "Invalid value received for argument `split`. Expected one of "
            f"{', '.join(repr(s) for s in SPLITS)}. Received: split={split!r}"
        )


def _check_positive_int(argument, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f"Invalid value received for argument `{argument}`. Expected a positive "
            f"integer. Received: {argument}={value!r}"
        )


def _resolve_data_dir(data_dir):
    if data_dir is None:
        return default_data_dir()
    return os.path.abspath(os.path.expanduser(os.fspath(data_dir)))


def _is_prepared(builder):
    with _quiet_absl():
        return builder.is_prepared()


def _source(name):
    return "built-in" if name in _BUILTINS else "tfds"


def _first_line(text, limit=100):
    line = (text or "").strip().split("\n")[0].strip()
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


@contextlib.contextmanager
def _exclusive_lock(path):
    """Hold an exclusive advisory lock on `path` (no-op where fcntl is missing)."""
    if fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def _quiet_absl():
    """Hide TFDS's absl warnings about absent folders while we probe for them.

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
def _silenced():
    with open(os.devnull, "w") as devnull:
        with contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):
            yield
