"""Reading a CSV file as a `Source`: numeric feature columns and one label column, in chunks.

Parsed by pandas' C reader a chunk of rows at a time, once: the rows are
counted by their newlines, integer labels are checked as they pass (gaps
once the last row is read). Class names (string labels), and files whose
newlines do not count their rows (quoted fields, blank lines), need a first
pass over the label column alone. The header is the first row; scikit-learn's own
dataset files (`sklearn/datasets/data/*.csv`) are read too: their first row
is `n_samples, n_features, class names...`, the label is the last column,
and the class names come from that row.
"""

import collections
import contextlib
import csv
import os

import numpy as np

from kerasreg import _checks
from kerasreg.data.source import Source, check_finite, chunk_rows, class_labels, test_mask

# Rows whose labels tell integer labels (read in one pass) from class names (which need a label pass first).
_PEEK_ROWS = 1024


def open_csv(path, *, label=None, test_split=0.2, seed=0):
    """Open a CSV file as a `Source`; the header, label column and classes are checked here.

    Example:

    >>> open_csv("iris.csv").class_names()  # doctest: +SKIP
    ('setosa', 'versicolor', 'virginica')
    """
    import pandas as pd  # Only CSV imports need pandas.

    name = os.path.basename(path)
    columns, skip, names = _layout(path, name)
    if label is None:
        if "label" not in columns:
            raise ValueError(
                f"{name} has no column named 'label'; name the label column with `label=` "
                f"(`--label`). Columns: {', '.join(columns)}."
            )
        label = "label"
    if label not in columns:
        raise _checks.invalid("label", f"a column of {name}: {', '.join(columns)}", label)
    features = [column for column in columns if column != label]
    if not features:
        raise ValueError(f"{name} has no feature columns besides the label column {label!r}.")

    rows = chunk_rows(8 * len(columns))  # pandas parses numbers as 64-bit

    def read(**kwargs):
        try:
            return pd.read_csv(path, header=None, names=columns, skiprows=skip, index_col=False,
                               chunksize=rows, **kwargs)
        except pd.errors.EmptyDataError:
            raise ValueError(f"{name} is empty.") from None

    where = f"{name}'s label column {label!r}"
    first = next(_parsed(read(usecols=[label], nrows=_PEEK_ROWS), path, columns), None)
    num_rows = _count_rows(path)
    mapping, known = None, None
    if first is None or first[label].dtype.kind not in "iu" or num_rows is None:
        # Class names (or a file newlines cannot count): learn the classes and rows from the label column first.
        mapping, known, num_rows = _label_pass(read(usecols=[label], dtype={label: str}), label, path, columns,
                                               where, names)
    if num_rows == 0:
        raise ValueError(f"{name} has a header but no rows.")
    mask = test_mask(num_rows, test_split, seed, name)
    seen = set()

    def chunks():
        start = 0
        for chunk in _parsed(read(dtype={label: str} if mapping else None), path, columns):
            x = _features(chunk, features, name, start, path, columns)
            y = _labels(chunk[label], mapping, seen, where, start, path, columns)
            test = mask[start:start + len(chunk)]
            start += len(chunk)
            yield x, y, test
        if start != num_rows:
            raise ValueError(f"{name} has {start} rows to read but {num_rows} were counted.")

    def class_names():
        return known if mapping else class_labels(np.array(sorted(seen)), where, names)[1]

    sizes = {"train": int((~mask).sum()), "test": int(mask.sum())}
    return Source(kind="csv", path=path, input_key="x", input_shape=(len(features),),
                  input_dtype=np.dtype(np.float32), sizes=sizes, chunks=chunks, class_names=class_names)


def _count_rows(path):
    """Rows after the header line, by counting newlines; `None` when only a parser can tell.

    Quotes (a field may hold a newline), blank lines (pandas skips them) and
    lone carriage returns make a line count differ from a row count.
    """
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 << 20), b""):
            if b'"' in block or (last == b"\n" and block[:1] in (b"\n", b"\r")):
                return None
            data = np.frombuffer(block, np.uint8)
            newlines = np.flatnonzero(data == ord("\n"))
            if (np.diff(newlines) == 1).any():
                return None
            if b"\r" in block:
                returns = np.flatnonzero(data == ord("\r"))
                blank = (np.diff(newlines) == 2) & (data[newlines[1:] - 1] == ord("\r"))
                if returns[-1] == len(data) - 1 or (data[returns + 1] != ord("\n")).any() or blank.any():
                    return None
            lines += len(newlines)
            last = block[-1:]
    return max(0, lines + (last != b"\n") - 1)


def _label_pass(chunks, label, path, columns, where, names):
    """`(mapping, class names, rows)` from the label column read as strings."""
    distinct, num_rows, first_kind, mixed = set(), 0, None, None
    for chunk in _parsed(chunks, path, columns):
        values = chunk[label]
        _check_present(values, num_rows, where, path, columns)
        too_long = np.flatnonzero(values.str.len().to_numpy() > csv.field_size_limit())
        if len(too_long):
            raise _too_long(os.path.basename(path), f"row {num_rows + int(too_long[0])}")
        distinct.update(values.unique())
        integer = _is_integer(values)
        first_kind = integer[0] if first_kind is None else first_kind
        other = np.flatnonzero(integer != first_kind)
        if mixed is None and len(other):
            mixed = num_rows + int(other[0]), values.iloc[other[0]]
        num_rows += len(chunk)
    if num_rows == 0:
        return {}, (), 0
    mapping, class_names = class_labels(np.array(sorted(distinct)), where, names)  # raises for float labels
    if mixed:
        raise ValueError(_mixed_message(where, *mixed))
    return mapping, class_names, num_rows


def _labels(values, mapping, seen, where, start, path, columns):
    """A chunk's class indices; integer labels (no `mapping`) are gathered in `seen` and checked at the end."""
    _check_present(values, start, where, path, columns)
    if mapping:
        return values.map(mapping).to_numpy(np.int64)
    if values.dtype.kind not in "iu":
        strings = values.astype(str)
        # Raises for float labels; a name among integers cannot be numbered like the integers before it.
        class_labels(strings.to_numpy(str), where)
        row = int(np.argmin(_is_integer(strings)))
        raise ValueError(_mixed_message(where, start + row, strings.iloc[row]))
    distinct = np.unique(values.to_numpy())
    if distinct[0] < 0:
        class_labels(distinct, where)  # raises, naming the negative label
    seen.update(distinct.tolist())
    return values.to_numpy(np.int64)


def _is_integer(strings):
    """Which labels (read as strings) are integers, as `class_labels` reads them (`int()` allows spaces)."""
    return strings.str.fullmatch(r"\s*[+-]?\d+\s*").to_numpy(bool)


def _mixed_message(where, row, value):
    return f"{where} mixes integer labels and class names (row {row}: {_shown(value)}); use one kind."


def _shown(value):
    """`value` for a message: its repr, or the start of a long one and its length."""
    text = str(value)
    return repr(value) if len(text) <= 40 else f"{text[:20]!r}... of {len(text)} characters"


def _check_present(values, start, where, path, columns):
    if values.isna().any():
        row = start + int(np.flatnonzero(values.isna().to_numpy())[0])
        raise ValueError(_row_length_message(path, columns, strict=False) or f"{where} is empty in row {row}.")


def _layout(path, name):
    """`(columns, rows to skip, class names or None)`, from the first two rows."""
    with contextlib.closing(_rows(path)) as rows:
        header = next(rows, None)
        first = next(rows, None)
    if not header:
        raise ValueError(f"{name} is empty.")
    if first is None:
        raise ValueError(f"{name} has a header but no rows.")
    if _is_sklearn_header(header, first):
        num_features = int(header[1])
        columns = [f"feature_{i}" for i in range(num_features)] + ["label"]
        return columns, 1, [name.strip() for name in header[2:]] or None
    columns = [column.strip() for column in header]
    duplicates = sorted(c for c, n in collections.Counter(columns).items() if n > 1)
    if duplicates or "" in columns:
        raise ValueError(f"{name} has blank or repeated column names in its header: {duplicates or ['']}.")
    return columns, 1, None


def _is_sklearn_header(header, first):
    """scikit-learn's `n_samples, n_features, class names...` header (see `sklearn.datasets.load_csv_data`)."""
    try:
        return int(header[0]) > 0 and int(header[1]) == len(first) - 1
    except (ValueError, IndexError):
        return False


def _parsed(chunks, path, columns):
    """Chunks from pandas, with its tokenizer errors turned into one message naming the line."""
    import pandas as pd

    try:
        yield from chunks
    except pd.errors.ParserError:
        raise ValueError(_row_length_message(path, columns)) from None
    except UnicodeDecodeError:
        raise ValueError(_not_utf8_message(path)) from None


def _features(chunk, features, name, start, path, columns):
    part = chunk[features]
    for column in features:
        if part[column].dtype.kind not in "biuf":
            values = part[column]
            numeric = values.apply(_is_number)
            row = int(np.flatnonzero(~numeric.to_numpy())[0])
            raise ValueError(
                f"{name} has a non-numeric feature column {column!r} (row {start + row}: "
                f"{_shown(values.iloc[row])}). Feature columns must be numbers: encode it, or drop it."
            )
    x = part.to_numpy(np.float32)
    if not np.isfinite(x).all():
        # pandas fills the cells of a short row with NaN: name the row length if that is what happened.
        message = np.isnan(x).any() and _row_length_message(path, columns, strict=False)
        if message:
            raise ValueError(message)
        check_finite(x, name, start)
    return x


def _is_number(value):
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _row_length_message(path, columns, strict=True):
    """Name the first line whose field count differs from the header's (only ever run on a bad file)."""
    with contextlib.closing(_rows(path)) as rows:
        for line, row in enumerate(rows, start=1):
            if line > 1 and row and len(row) != len(columns):
                return (
                    f"{os.path.basename(path)} has mixed row lengths: line {line} has {len(row)} fields, "
                    f"the header has {len(columns)}."
                )
    return f"{os.path.basename(path)} could not be parsed as CSV." if strict else None


def _not_utf8_message(path):
    """Name the first line that is not UTF-8, and its byte (only ever run on a bad file).

    The codec's own message gives an offset into pandas' buffer, not the file, and names neither.
    """
    offset = 0
    with open(path, "rb") as f:
        for line, data in enumerate(f, start=1):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as error:
                where = f" (line {line}, byte {offset + error.start}: {data[error.start]:#04x})"
                break
            offset += len(data)
        else:
            where = ""
    return f"{os.path.basename(path)} is not UTF-8 text{where}; save it as UTF-8 (CSV UTF-8) and import it again."


def _rows(path):
    """csv's rows of `path`; a byte that is not UTF-8, or a field over csv's limit, is refused naming the file."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            yield from reader
        except UnicodeDecodeError:
            raise ValueError(_not_utf8_message(path)) from None
        except csv.Error as error:
            if "field limit" not in str(error):
                raise
            raise _too_long(os.path.basename(path), f"line {reader.line_num}") from None


def _too_long(name, where):
    # csv's default limit, kept (and applied to what pandas reads too): a longer field is no number and no class name.
    return ValueError(f"{name} {where} has a field longer than {csv.field_size_limit()} characters; fields must be "
                      "numbers or class names (is a quote left open?).")
