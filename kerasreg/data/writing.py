"""Writing a streamed `Source` as a prepared TFDS dataset: TFRecord shards, then TFDS's metadata.

TFDS's own writer (`GeneratorBasedBuilder` and `AdhocBuilder`) turns every
example into a nested dict, flattens, encodes and serializes it in Python,
and passes it through a shuffler: about 50 us per row, where parsing a CSV
row takes 7. Here every example has one input of a fixed shape and one
label, so its `tf.train.Example` is the same bytes around a different
payload: TFDS's serializer writes one template per feature, and each row is
`input template + raw input bytes + label template`, written by TensorFlow's
`TFRecordWriter`. Two serialized messages one after the other are one
message holding both (protobuf merges a repeated embedded message), so the
row parses as an example with both features. The shards are named and
counted as TFDS names and counts them, and `tfds.folder_dataset.write_metadata`
(TFDS's way in for datasets written outside it) writes `dataset_info.json`,
`features.json` and the class names. Memory holds one chunk.
"""

import os

import numpy as np
import tensorflow_datasets as tfds


def write_source(version_dir, name, source, bar):
    """Write every example of `source` as TFRecord shards of `name` in `version_dir`; return split infos.

    Rows keep their source order within each split (the dataset is read
    unshuffled), so an import is deterministic.

    Args:
        version_dir: str. The dataset's version folder (`.../<name>/1.0.0`).
        name: str. The dataset name, the shards' prefix.
        source: `Source`. The opened source.
        bar: tqdm. Progress bar, advanced a chunk at a time.

    Returns:
        A list of `tfds.core.SplitInfo`, one per split.

    Example:

    >>> write_source("/tmp/d/iris/1.0.0", "iris", open_source("iris.csv"), tqdm(disable=True))  # doctest: +SKIP
    [SplitInfo(name='train', ...), SplitInfo(name='test', ...)]
    """
    import tensorflow as tf

    os.makedirs(version_dir, exist_ok=True)
    encode = _encoder(source)
    row_bytes = len(encode(np.zeros((1, *source.input_shape), source.input_dtype), np.zeros(1, np.int64))[0])
    splits = {split: _SplitWriter(tf, version_dir, name, split, count, row_bytes)
              for split, count in source.sizes.items()}
    try:
        for x, y, test in source.chunks():
            for split, rows in (("train", ~test), ("test", test)):
                if rows.any():
                    splits[split].write(encode(x[rows], y[rows]))
            bar.update(len(y))
    finally:
        for writer in splits.values():
            writer.close()
    return [writer.split_info() for writer in splits.values()]


def _encoder(source):
    """`encode(x, y)`: the serialized `tf.train.Example` of every row of a chunk, made from TFDS's templates."""
    item_bytes = int(np.prod(source.input_shape)) * source.input_dtype.itemsize
    # A payload unlike any byte of the protobuf framing, so finding it in the template cannot be mistaken.
    pattern = np.resize(np.arange(1, 256, dtype=np.uint8), item_bytes)
    template = _input_features(source).serialize_example(
        {source.input_key: pattern.view(source.input_dtype).reshape(source.input_shape)})
    if not template.endswith(pattern.tobytes()):
        raise RuntimeError("TFDS serializes byte-encoded tensors in an unexpected layout; cannot write the import.")
    head = template[:-item_bytes]
    label_parts = {}

    def label_part(label):
        # A ClassLabel serializes as an int64 feature; its template does not depend on the class names.
        features = tfds.features.FeaturesDict({"label": tfds.features.ClassLabel(num_classes=label + 1)})
        return label_parts.setdefault(label, features.serialize_example({"label": label}))

    def encode(x, y):
        payload = np.ascontiguousarray(x, source.input_dtype).tobytes()
        tails = {label: label_parts.get(label) or label_part(label) for label in np.unique(y).tolist()}
        return [head + payload[i * item_bytes:(i + 1) * item_bytes] + tails[label]
                for i, label in enumerate(y.tolist())]

    return encode


def features_of(source, class_names):
    """The TFDS features of an imported `source`: its input as raw bytes and its class label.

    Example:

    >>> features_of(open_source("iris.csv"), ("setosa", "versicolor", "virginica"))  # doctest: +SKIP
    FeaturesDict({'label': ClassLabel(...), 'x': Tensor(shape=(4,), dtype=float32)})
    """
    return tfds.features.FeaturesDict({
        **_input_features(source),
        "label": tfds.features.ClassLabel(names=list(class_names)),
    })


def _input_features(source):
    return tfds.features.FeaturesDict({
        # Raw bytes: one bytes_list per example, read back by TFDS with one decode_raw.
        source.input_key: tfds.features.Tensor(shape=source.input_shape, dtype=source.input_dtype,
                                               encoding=tfds.features.Encoding.BYTES),
    })


class _SplitWriter:
    """The shards of one split: as many as TFDS would write for its size, each a `TFRecordWriter`."""

    def __init__(self, tf, version_dir, name, split, count, row_bytes):
        from tensorflow_datasets.core.utils import shard_utils

        self._tf, self.split, self._row_bytes = tf, split, row_bytes
        shards = shard_utils.ShardConfig.calculate_number_shards(count * row_bytes, count) if count else 1
        self._ends = shard_utils.get_shard_boundaries(count, shards) if count else [0]
        template = tfds.core.ShardedFileTemplate(data_dir=tfds.core.Path(version_dir), split=split,
                                                 dataset_name=name, filetype_suffix="tfrecord")
        self._paths = [os.fspath(path) for path in template.sharded_filepaths(len(self._ends))]
        self._lengths, self._bytes, self._written = [], 0, 0
        self._writer = None

    def write(self, records):
        while records:
            if self._writer is None:
                self._writer = self._tf.io.TFRecordWriter(self._paths[len(self._lengths)])
                self._lengths.append(0)
            room = self._ends[len(self._lengths) - 1] - self._written
            if room <= 0:
                raise RuntimeError(f"Split {self.split!r}: more than the {self._ends[-1]} examples expected.")
            part, records = records[:room], records[room:]
            write = self._writer.write
            for record in part:
                write(record)
            self._lengths[-1] += len(part)
            self._bytes += sum(map(len, part))
            self._written += len(part)
            if len(part) == room:
                self._writer.close()
                self._writer = None

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def split_info(self):
        if self._written != self._ends[-1]:
            raise RuntimeError(f"Split {self.split!r}: {self._written} examples written, {self._ends[-1]} expected.")
        if not self._lengths:  # an empty split still has its (empty) shard file
            self._tf.io.TFRecordWriter(self._paths[0]).close()
            self._lengths = [0]
        return tfds.core.SplitInfo(name=self.split, shard_lengths=self._lengths, num_bytes=self._bytes)
