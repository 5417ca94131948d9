"""`Dataset`: train/validation/test arrays in memory, with seeded, resumable batches (`tf.data` or numpy)."""

import dataclasses
import itertools

import numpy as np
import tensorflow as tf

from kerasreg import _checks
from kerasreg.data.builders import source

SPLITS = ("train", "val", "test")


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
        x_train: np.ndarray. Training inputs.
        y_train: np.ndarray. Training labels.
        x_val: np.ndarray. Validation inputs.
        y_val: np.ndarray. Validation labels.
        x_test: np.ndarray. Test inputs.
        y_test: np.ndarray. Test labels.
        num_classes: int. Number of classes.
        class_names: tuple of str. Name of each class index.
        info: `tfds.core.DatasetInfo`. TFDS metadata (features, citation, ...).
        data_dir: str. Where the prepared TFDS files are.
        split_seed: int. Seed that chose the validation examples.
        validation_split: float. Fraction of train held out for validation.
        mean: np.ndarray or None. Standardization mean fitted on the training
            part (over every axis but the last, as `keras.layers.Normalization`
            does), or `None` when not standardized.
        std: np.ndarray or None. The matching standard deviation, or `None`.
        source_sha256: str or None. For an imported dataset, the sha256 of
            the source it was imported from; else `None`.

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
    info: object = dataclasses.field(repr=False)
    data_dir: str
    split_seed: int
    validation_split: float
    mean: np.ndarray | None = dataclasses.field(default=None, repr=False)
    std: np.ndarray | None = dataclasses.field(default=None, repr=False)
    source_sha256: str | None = dataclasses.field(default=None, repr=False)

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
        _checks.one_of(split, SPLITS, "split")
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
        _checks.positive_int(batch_size, "batch_size")
        _checks.non_negative_int(initial_epoch, "initial_epoch")
        if shuffle is None:
            shuffle = split == "train"
        if seed is None:
            seed = self.split_seed
        _checks.seed(seed)
        if shuffle:
            batches = _shuffled_batches(x, y, batch_size, seed, initial_epoch, drop_remainder)
        else:
            batches = tf.data.Dataset.from_tensor_slices((x, y))
            batches = batches.batch(batch_size, drop_remainder=drop_remainder).cache()
        return batches.prefetch(tf.data.AUTOTUNE)

    def batches(self, split, batch_size=32, *, seed=None, initial_epoch=0):
        """Yield shuffled numpy `(x, y)` batches, epoch after epoch, without end.

        The same batches in the same order as `pipeline(split, batch_size,
        shuffle=True, seed=seed, initial_epoch=initial_epoch)`, cut from memory
        in Python: what Keras's JAX trainer consumes fastest, since it pulls a
        `tf.data` pipeline through Python one batch at a time and makes a new
        iterator every epoch. Stop after `ceil(rows / batch_size)` batches per
        epoch (e.g. `fit(steps_per_epoch=...)`).

        Args:
            split: str. One of `"train"`, `"val"`, `"test"`.
            batch_size: int. Examples per batch. Defaults to `32`.
            seed: int or None. Shuffle seed; `None` uses `split_seed`.
                Defaults to `None`.
            initial_epoch: int. Epoch index of the first pass. Defaults to `0`.

        Example:

        >>> ds = load_dataset("mnist1d")
        >>> x_batch, y_batch = next(ds.batches("train", batch_size=100, seed=0))
        >>> x_batch.shape, y_batch.shape
        ((100, 40), (100,))
        """
        x, y = self.as_numpy(split)
        _checks.positive_int(batch_size, "batch_size")
        _checks.non_negative_int(initial_epoch, "initial_epoch")
        seed = _checks.seed(self.split_seed if seed is None else seed)
        return _epoch_batches(x, y, batch_size, seed, initial_epoch)

    def describe(self):
        """Return a short human-readable summary of the loaded splits.

        Example:

        >>> print(load_dataset("digits").describe())  # doctest: +ELLIPSIS
        Dataset 'digits' ...
        """
        sizes = self.sizes
        return "\n".join(
            [
                f"Dataset {self.name!r} ({'imported' if self.source_sha256 else source(self.name)}) "
                f"from {self.data_dir}",
                f"  input: shape {self.input_shape}, {self.x_train.dtype}; "
                f"{self.num_classes} classes",
                f"  train {sizes['train']} / val {sizes['val']} / test {sizes['test']} "
                f"(validation_split={self.validation_split} of train, seed {self.split_seed})",
                "  standardized with training-part mean/std"
                if self.standardized
                else "  not standardized",
            ]
        )


def _epoch_order(num_examples, seed, epoch):
    """The shuffled row order of epoch `epoch`: a stateless function of `(seed, epoch)`."""
    return tf.random.experimental.stateless_shuffle(
        tf.range(num_examples), seed=tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    )


def _epoch_batches(x, y, batch_size, seed, initial_epoch):
    for epoch in itertools.count(initial_epoch):
        order = _epoch_order(len(y), seed, epoch).numpy()
        for start in range(0, len(y), batch_size):
            rows = order[start : start + batch_size]
            yield x[rows], y[rows]


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
        order = _epoch_order(num_examples, seed, epoch.assign_add(1) - 1)
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

