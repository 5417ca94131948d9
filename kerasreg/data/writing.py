"""Writing a streamed `Source` as a prepared TFDS dataset: TFRecord shards, then TFDS's metadata.

TFDS's own writer (`GeneratorBasedBuilder` and `AdhocBuilder`) turns every
example into a nested dict, flattens, encodes and serializes it in Python,
and passes it through a shuffler: about 50 us per row, where parsing a CSV
row takes 2. Here every example has one input of a fixed shape and one
label, so its `tf.train.Example` is the same bytes around a different
payload: TFDS's serializer writes one template per feature, and each row is
`input template + raw input bytes + label template`. Two serialized
messages one after the other are one message holding both (protobuf merges
a repeated embedded message), so the row parses as an example with both
features. A chunk of rows is assembled as one numpy array, and TensorFlow's
`tf.io.TFRecordWriter` writes each row as a TFRecord (with the checksums
TFDS verifies when it reads). The shards are named and counted as TFDS
names and counts them, and `tfds.folder_dataset.write_metadata` (TFDS's way
in for datasets written outside it) writes `dataset_info.json`,
`features.json` and the class names. The source is read in a thread, a
chunk ahead of the writing (pandas' parser and file reads release the GIL),
so memory holds three chunks at most.

TensorFlow's writer is as fast as framing the records in numpy with
`google-crc32c`, as imports did before, on `benchmarks/import_speed.py`'s
1,000,000-row CSV with both imports and `pandas.read_csv` in turn (2 cores at
load average 13-17, where one reader's runs varied by 1.5x): medians 10.48 s
with the writer, 11.53 s with the framing, 6.33 s for pandas over 5 rounds
(`--only csv --repeat 5 --against <framing checkout>`); 14.36 s, 12.68 s and
8.57 s over 3 rounds before; 12.16 s and 12.20 s over all 8.
"""

import contextlib
import os
import queue
import threading

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from kerasreg._files import os_error_from_text

_ENCODE_ROWS = 4096


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
    os.makedirs(version_dir, exist_ok=True)
    encode = _encoder(source)
    _, (row_bytes,) = encode(np.zeros((1, *source.input_shape), source.input_dtype), np.zeros(1, np.int64))
    splits = {split: _SplitWriter(version_dir, name, split, count, int(row_bytes))
              for split, count in source.sizes.items()}
    # Closed at once on an error, so the reading thread stops before the caller removes the folder.
    with contextlib.closing(_ahead(source.chunks())) as chunks, contextlib.ExitStack() as files:
        for writer in splits.values():
            files.callback(writer.close)
        for x, y, test in chunks:
            for split, rows in (("train", ~test), ("test", test)):
                rows = np.flatnonzero(rows)
                # A few thousand rows at a time: the encoded copies stay small beside the chunk.
                for start in range(0, len(rows), _ENCODE_ROWS):
                    part = rows[start:start + _ENCODE_ROWS]
                    splits[split].write(encode(x[part], y[part]))
            bar.update(len(y))
    return [writer.split_info() for writer in splits.values()]


def _ahead(chunks, depth=1):
    """Iterate `chunks` read by a thread up to `depth` items ahead; its error is raised here, in order."""
    ready = queue.Queue(depth)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read():
        try:
            for chunk in chunks:
                if not put((True, chunk)):
                    return
            put((False, None))
        except BaseException as error:  # handed to the caller, who raises it
            put((False, error))
        finally:
            chunks.close()

    thread = threading.Thread(target=read, name="kerasreg-import-reader", daemon=True)
    thread.start()
    try:
        while True:
            more, item = ready.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _encoder(source):
    """`encode(x, y)`: every row's serialized `tf.train.Example`, made from TFDS's templates."""
    item_bytes = int(np.prod(source.input_shape)) * source.input_dtype.itemsize
    # A payload unlike any byte of the protobuf framing, so finding it in the template cannot be mistaken.
    pattern = np.resize(np.arange(1, 256, dtype=np.uint8), item_bytes)
    template = _input_features(source).serialize_example(
        {source.input_key: pattern.view(source.input_dtype).reshape(source.input_shape)})
    if not template.endswith(pattern.tobytes()):
        raise RuntimeError("TFDS serializes byte-encoded tensors in an unexpected layout; cannot write the import.")
    head = np.frombuffer(template[:-item_bytes], np.uint8)
    tails = {}

    def tail(label):
        if label not in tails:
            # A ClassLabel serializes as an int64 feature; its template does not depend on the class names.
            features = tfds.features.FeaturesDict({"label": tfds.features.ClassLabel(num_classes=label + 1)})
            tails[label] = np.frombuffer(features.serialize_example({"label": label}), np.uint8)
        return tails[label]

    def encode(x, y):
        """The rows' serialized examples, in order: `(bytes as a flat uint8 array, each row's end offset)`."""
        payload = np.ascontiguousarray(x, source.input_dtype).reshape(len(x), -1).view(np.uint8)
        labels, which = np.unique(y, return_inverse=True)
        parts = [tail(label) for label in labels.tolist()]
        lengths = np.array([len(part) for part in parts])[which]
        groups = []
        for length in np.unique(lengths).tolist():
            rows = np.flatnonzero(lengths == length)
            data = np.empty((len(rows), len(head) + item_bytes + length), np.uint8)
            data[:, :len(head)] = head
            data[:, len(head):len(head) + item_bytes] = payload[rows]
            # Labels of another length never index this table: their rows are in another group.
            table = np.stack([part if len(part) == length else np.zeros(length, np.uint8) for part in parts])
            data[:, len(head) + item_bytes:] = table[which[rows]]
            groups.append((rows, data))
        if len(groups) == 1:  # labels below 128 all have one length: the chunk is one array
            (_, data), = groups
            return data.reshape(-1), np.arange(1, len(data) + 1) * data.shape[1]
        records = [None] * len(y)
        for rows, data in groups:
            blob, size = data.tobytes(), data.shape[1]
            for row, offset in zip(rows.tolist(), range(0, len(blob), size)):
                records[row] = blob[offset:offset + size]
        return np.frombuffer(b"".join(records), np.uint8), np.cumsum([len(record) for record in records])

    return encode


@contextlib.contextmanager
def _naming(path):
    """Raise a write's error as an `OSError` naming the file: TensorFlow gives the system's reason as text only."""
    try:
        yield
    except tf.errors.OpError as error:
        reason = os_error_from_text(error.message, path)
        if reason is None:
            raise
        raise reason from None


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
    """The shards of one split, as many as TFDS would write for its size; takes serialized examples in order."""

    def __init__(self, version_dir, name, split, count, row_bytes):
        from tensorflow_datasets.core.utils import shard_utils

        self.split = split
        shards = shard_utils.ShardConfig.calculate_number_shards(count * row_bytes, count) if count else 1
        self._ends = shard_utils.get_shard_boundaries(count, shards) if count else [0]
        template = tfds.core.ShardedFileTemplate(data_dir=tfds.core.Path(version_dir), split=split,
                                                 dataset_name=name, filetype_suffix="tfrecord")
        self._paths = [os.fspath(path) for path in template.sharded_filepaths(len(self._ends))]
        self._lengths, self._bytes, self._written = [], 0, 0
        self._file = self._path = None

    def write(self, records):
        """Write `(bytes, each row's end offset)` from `encode`, starting a new shard where one ends."""
        blob, ends = records
        blob, ends = blob.tobytes(), ends.tolist()
        while ends:
            if self._file is None:
                self._path = self._paths[len(self._lengths)]
                with _naming(self._path):
                    self._file = tf.io.TFRecordWriter(self._path)
                self._lengths.append(0)
            room = self._ends[len(self._lengths) - 1] - self._written
            if room <= 0:
                raise RuntimeError(f"Split {self.split!r}: more than the {self._ends[-1]} examples expected.")
            count = min(room, len(ends))
            with _naming(self._path):
                start = 0
                for end in ends[:count]:
                    self._file.write(blob[start:end])
                    start = end
            self._lengths[-1] += count
            self._bytes += start
            self._written += count
            blob, ends = blob[start:], [end - start for end in ends[count:]]
            if count == room:
                self.close()

    def close(self):
        if self._file is not None:
            file, self._file = self._file, None
            with _naming(self._path):  # closing writes what is still buffered
                file.close()

    def split_info(self):
        if self._written != self._ends[-1]:
            raise RuntimeError(f"Split {self.split!r}: {self._written} examples written, {self._ends[-1]} expected.")
        if not self._lengths:  # an empty split still has its (empty) shard file
            open(self._paths[0], "wb").close()
            self._lengths = [0]
        return tfds.core.SplitInfo(name=self.split, shard_lengths=self._lengths, num_bytes=self._bytes)
