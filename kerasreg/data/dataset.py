"""`Dataset`: train/validation/test arrays in memory, with seeded, resumable batches (`tf.data` or numpy)."""

import dataclasses
import itertools

import numpy as np
import tensorflow as tf

from kerasreg import _checks
from kerasreg.data.builders import source
from kerasreg.data.defaults import VALIDATION_SPLIT

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
        info: `tfds.core.DatasetInfo` or None. TFDS metadata (features,
            citation, ...); `None` for a dataset made with `from_arrays`.
        data_dir: str or None. Where the prepared TFDS files are (`None`
            for a dataset made with `from_arrays`).
        split_seed: int. Seed that chose the validation examples.
        validation_split: float. Fraction of train held out for validation.
        mean: np.ndarray or None. Standardization mean fitted on the training
            part (over every axis but the last, as `keras.layers.Normalization`
            does), or `None` when not standardized.
        std: np.ndarray or None. The matching standard deviation, or `None`.
        source_sha256: str or None. For an imported dataset, the sha256 of
            the source it was imported from; else `None`.

    Example:

    >>> import kerasreg
    >>> ds = kerasreg.load_dataset("mnist1d")
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

    @classmethod
    def from_arrays(cls, x_train, y_train, x_test=None, y_test=None, *, validation_split=VALIDATION_SPLIT, seed=0,
                    name=None, test_split=0.2):
        """Make a `Dataset` from numpy arrays in memory, split as `load_dataset` splits.

        Validation is carved from train with `seed` exactly as for the
        built-ins; without `x_test`, a `test_split` fraction of the examples
        is held out as test first (with the same seed). Labels follow the
        import rules: integer class indices `0..K-1` (no gaps), or strings
        (sorted into class names); inputs must be finite, uint8 images are
        scaled to [0, 1].

        Args:
            x_train: array-like. Training inputs, one example per row.
            y_train: array-like. Training labels, one per example.
            x_test: array-like or None. Test inputs. Defaults to `None`.
            y_test: array-like or None. Test labels. Defaults to `None`.
            validation_split: float. Fraction of train held out for
                validation. Defaults to `0.1`.
            seed: int. Seed of the validation (and test) split. Defaults to `0`.
            name: str or None. Name recorded in run manifests. Defaults to
                `None`, meaning `"arrays"`.
            test_split: float. Fraction held out as test when `x_test` is
                `None`. Defaults to `0.2`.

        Returns:
            A `Dataset` (with `info` and `data_dir` `None`).

        Raises:
            ValueError: ragged inputs, x and y of different lengths, NaN or
                inf inputs, labels with gaps, negatives or floats.

        Example:

        >>> import numpy as np
        >>> x, y = np.random.default_rng(0).normal(size=(100, 5)), np.arange(100) % 3
        >>> Dataset.from_arrays(x, y).sizes
        {'train': 72, 'val': 8, 'test': 20}
        """
        from kerasreg.data.source import check_finite, class_labels, test_mask

        name = "arrays" if name is None else name
        _checks.fraction(validation_split, "validation_split")
        _checks.seed(seed)
        given = {"x_train": x_train, "y_train": y_train}
        if (x_test is None) != (y_test is None):
            raise ValueError("Pass both `x_test` and `y_test`, or neither.")
        if x_test is not None:
            given.update(x_test=x_test, y_test=y_test)
        arrays = {key: _as_array(value, key) for key, value in given.items()}
        for split in ("train", "test") if x_test is not None else ("train",):
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
            if len(x) != len(y):
                raise ValueError(
                    f"`x_{split}` has {len(x)} examples but `y_{split}` has {len(y)} labels; x and y must "
                    "have the same length."
                )
            if y.ndim != 1:
                raise ValueError(f"`y_{split}` has shape {y.shape}; expected one label per example.")
            arrays[f"x_{split}"] = float_inputs(x, name)
            check_finite(arrays[f"x_{split}"], f"`x_{split}`", 0)
        if x_test is not None and arrays["x_test"].shape[1:] != arrays["x_train"].shape[1:]:
            raise ValueError(
                f"`x_test` examples have shape {arrays['x_test'].shape[1:]} but `x_train` examples have "
                f"{arrays['x_train'].shape[1:]}."
            )
        labels = [arrays[key] for key in ("y_train", "y_test") if key in arrays]
        mapping, class_names = class_labels(np.concatenate(labels), "The labels")
        keys = np.array(sorted(mapping))
        indices = np.array([mapping[key.item()] for key in keys], np.int32)
        for key in ("y_train", "y_test"):
            if key in arrays:
                arrays[key] = indices[np.searchsorted(keys, arrays[key])]
        x_all, y_all = arrays["x_train"], arrays["y_train"]
        if x_test is None:
            mask = test_mask(len(y_all), test_split, seed, "the arrays")
            arrays.update(x_train=x_all[~mask], y_train=y_all[~mask], x_test=x_all[mask], y_test=y_all[mask])
        train_index, val_index = carve_validation(len(arrays["y_train"]), validation_split, seed, name)
        return cls(
            name=name,
            x_train=arrays["x_train"][train_index], y_train=arrays["y_train"][train_index],
            x_val=arrays["x_train"][val_index], y_val=arrays["y_train"][val_index],
            x_test=arrays["x_test"], y_test=arrays["y_test"],
            num_classes=len(class_names), class_names=class_names, info=None, data_dir=None,
            split_seed=int(seed), validation_split=float(validation_split),
        )

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

        >>> import kerasreg
        >>> x, y = kerasreg.load_dataset("digits").as_numpy("test")
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

        >>> import kerasreg
        >>> ds = kerasreg.load_dataset("mnist1d")
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

        >>> import kerasreg
        >>> ds = kerasreg.load_dataset("mnist1d")
        >>> x_batch, y_batch = next(ds.batches("train", batch_size=100, seed=0))
        >>> x_batch.shape, y_batch.shape
        ((100, 40), (100,))
        """
        x, y = self.as_numpy(split)
        _checks.positive_int(batch_size, "batch_size")
        _checks.non_negative_int(initial_epoch, "initial_epoch")
        seed = _checks.seed(self.split_seed if seed is None else seed)
        return _epoch_batches(x, y, batch_size, seed, initial_epoch)

    def _origin(self):
        if self.info is None:
            return "in memory"
        return "imported" if self.source_sha256 else source(self.name)

    def describe(self):
        """Return a short human-readable summary of the loaded splits.

        Example:

        >>> import kerasreg
        >>> print(kerasreg.load_dataset("digits").describe())  # doctest: +ELLIPSIS
        Dataset 'digits' ...
        """
        sizes = self.sizes
        return "\n".join(
            [
                f"Dataset {self.name!r} ({self._origin()}) from {self.data_dir or 'arrays in memory'}",
                f"  input: shape {self.input_shape}, {self.x_train.dtype}; "
                f"{self.num_classes} classes",
                f"  train {sizes['train']} / val {sizes['val']} / test {sizes['test']} "
                f"(validation_split={self.validation_split} of train, seed {self.split_seed})",
                "  standardized with training-part mean/std"
                if self.standardized
                else "  not standardized",
            ]
        )


def _as_array(value, argument):
    try:
        array = np.asarray(value)
    except ValueError:  # NumPy refuses to stack rows of different lengths
        raise ValueError(
            f"`{argument}` is ragged: its examples have different shapes. Pad or resize them to one shape."
        ) from None
    if array.dtype == object:
        raise ValueError(
            f"`{argument}` is ragged or not numeric (dtype object). Every example must have the same "
            "shape and hold numbers."
        )
    if array.ndim == 0:
        raise ValueError(f"`{argument}` must be an array of examples. Received a scalar: {value!r}")
    return array


def carve_validation(num_examples, validation_split, seed, name):
    """Split train indices into (train, val) with a seeded permutation.

    Example:

    >>> carve_validation(10, 0.2, 0, "x")[1].size
    2
    """
    num_val = int(round(num_examples * validation_split))
    if not 0 < num_val < num_examples:
        raise _checks.invalid("validation_split", "a split that leaves at least one example for validation and "
                              f"one for training out of the {num_examples} training examples of {name!r}",
                              validation_split)
    order = np.random.default_rng(seed).permutation(num_examples)
    # Sorted so both parts keep the source order; pipelines shuffle anyway.
    return np.sort(order[num_val:]), np.sort(order[:num_val])


def float_inputs(x, name):
    """Inputs as float32: uint8 images scaled to [0, 1], other numbers cast.

    Example:

    >>> float_inputs(np.array([[0, 255]], np.uint8), "x")
    array([[0., 1.]], dtype=float32)
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype.kind in "biuf":
        return x.astype(np.float32)
    raise ValueError(
        f"Dataset {name!r} has inputs of dtype {x.dtype}; kerasreg needs numeric "
        "inputs (images, signals or feature vectors)."
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

