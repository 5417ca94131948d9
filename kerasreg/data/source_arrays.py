"""Reading an `.npz` file of arrays as a `Source`, a chunk of rows at a time.

Keys `x_train`, `y_train` and optionally `x_test`, `y_test`; or `x`, `y`,
split with a seed. Inputs are read once, straight from the zip member's
`.npy` stream (stored or compressed), so memory holds one chunk of rows, not
the array; labels (one int per row) are read whole.
"""

import contextlib
import os
import tokenize
import zipfile
import zlib

import numpy as np

from kerasreg.data.source import Source, check_finite, chunk_rows, class_labels, test_mask

_LAYOUTS = (("x_train", "y_train", "x_test", "y_test"), ("x", "y"))


def open_npz(path, *, test_split=0.2, seed=0):
    """Open an `.npz` of arrays as a `Source`; shapes, lengths and labels are checked here.

    Example:

    >>> open_npz("data.npz").sizes  # doctest: +SKIP
    {'train': 800, 'test': 200}
    """
    name = os.path.basename(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"{path} is not an .npz file (not a zip archive).") from None
    with archive:
        headers = {member[:-4]: _header(archive, member, name)
                   for member in archive.namelist() if member.endswith(".npy")}
    keys = next((layout for layout in _LAYOUTS if set(layout[:2]) <= set(headers)), None)
    if keys is None:
        raise ValueError(
            f"{path} holds arrays {sorted(headers)}; expected `x_train`, `y_train` (and optionally "
            "`x_test`, `y_test`), or `x`, `y`."
        )
    if keys == _LAYOUTS[0] and len({"x_test", "y_test"} & set(headers)) == 1:
        present, missing = ("x_test", "y_test") if "x_test" in headers else ("y_test", "x_test")
        # Half a test split would otherwise be dropped without a word.
        raise ValueError(f"{path} holds `{present}` but no `{missing}`; save both test arrays, or neither.")
    has_test = keys == _LAYOUTS[0] and {"x_test", "y_test"} <= set(headers)
    pairs = [("x_train", "y_train"), ("x_test", "y_test")] if has_test else [keys[:2]]
    shapes = set()
    labels = []
    for x_key, y_key in pairs:
        x_shape, x_dtype = headers[x_key]
        y_shape, _ = headers[y_key]
        if x_dtype.kind not in "biuf":
            raise ValueError(f"{name}: `{x_key}` has dtype {x_dtype}; expected numeric features.")
        if len(x_shape) < 2:
            raise ValueError(f"{name}: `{x_key}` has shape {x_shape}; expected (examples, features...).")
        if len(y_shape) != 1 and not (len(y_shape) == 2 and y_shape[1] == 1):
            raise ValueError(f"{name}: `{y_key}` has shape {y_shape}; expected one label per example.")
        if x_shape[0] != y_shape[0]:
            raise ValueError(
                f"{name}: `{x_key}` has {x_shape[0]} examples but `{y_key}` has {y_shape[0]} labels; "
                "x and y must have the same length."
            )
        shapes.add(x_shape[1:])
        labels.append(_load(path, y_key).reshape(-1))
    if len(shapes) > 1:
        raise ValueError(f"{name}: train and test inputs differ in shape: {sorted(shapes)}.")
    mapping, class_names = class_labels(np.concatenate(labels), f"{name}'s labels")
    x_dtype = np.dtype(np.uint8) if headers[pairs[0][0]][1] == np.uint8 else np.dtype(np.float32)
    indexed = [np.vectorize(mapping.get, otypes=[np.int64])(y) if y.size else y for y in labels]

    if has_test:
        parts = [("x_train", indexed[0], None), ("x_test", indexed[1], None)]
        sizes = {"train": len(indexed[0]), "test": len(indexed[1])}
    else:
        mask = test_mask(len(indexed[0]), test_split, seed, name)
        parts = [(keys[0], indexed[0], mask)]
        sizes = {"train": int((~mask).sum()), "test": int(mask.sum())}

    def chunks():
        for x_key, y, mask in parts:
            for start, x in _row_chunks(path, x_key):
                check_finite(x, f"{name}: `{x_key}`", start)
                test = (np.full(len(x), x_key == "x_test") if mask is None
                        else mask[start:start + len(x)])
                yield x.astype(x_dtype, copy=False), y[start:start + len(x)], test

    return Source(kind="npz", path=path, input_key="x", input_shape=tuple(shapes.pop()),
                  input_dtype=x_dtype, sizes=sizes, chunks=chunks, class_names=lambda: class_names,
                  own_test=has_test)


@contextlib.contextmanager
def _member(name, member):
    """Reading zip member `member` of `name`: a damaged one (bad CRC, corrupt or cut-short data) is named."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ValueError(f"{name}: its member {member} is damaged ({error}); save the .npz again.") from None


def _header(archive, member, name):
    with _member(name, member), archive.open(member) as f:
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
        except (ValueError, tokenize.TokenError) as error:  # numpy tokenizes the header's dict: a garbled one fails so
            raise ValueError(f"{name}: `{member[:-4]}` is not a readable .npy array ({error}).") from None
    if dtype.hasobject:
        raise ValueError(
            f"{name}: `{member[:-4]}` is a ragged array (dtype object); every example must have "
            "the same shape (pad or resize them first)."
        )
    return tuple(shape), dtype


def _load(path, key):
    with _member(os.path.basename(path), key + ".npy"), np.load(path, allow_pickle=False) as arrays:
        try:
            return arrays[key]
        except ValueError as error:  # numpy's "EOF: reading array data ...": the member holds less than its header says
            raise EOFError(error) from None


def _row_chunks(path, key):
    """Yield `(first_row, rows)` of array `key`, read from its zip member a chunk at a time."""
    with _member(os.path.basename(path), key + ".npy"), zipfile.ZipFile(path) as archive, \
            archive.open(key + ".npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        if fortran:  # column-major rows are not contiguous: only the whole array can be read
            yield 0, _load(path, key)
            return
        row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
        rows = chunk_rows(row_bytes)
        for start in range(0, shape[0], rows):
            count = min(rows, shape[0] - start)
            buffer = f.read(count * row_bytes)
            if len(buffer) != count * row_bytes:
                raise ValueError(f"{os.path.basename(path)}: `{key}` is truncated at row {start}.")
            yield start, np.frombuffer(buffer, dtype).reshape((count, *shape[1:]))
