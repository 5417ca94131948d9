"""What every importable source is read into: a `Source` of checked, streamed examples.

A reader (`source_arrays`, `source_csv`, `source_images`) looks at a
user's file to learn its shape and size, and checks what it can without
reading everything; `Source.chunks()` then streams every example once, in
source order and bounded chunks, each row marked train or test, checking
the rest (NaN, truncated images, label gaps) as it passes. Labels follow one
rule for every source: integer labels must be exactly `0..K-1`, string
labels are sorted and numbered, and the class names are kept.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable, Iterator

import numpy as np

from kerasreg import _checks

# A chunk of rows as parsed holds about this many bytes: large enough that per-chunk costs vanish (pandas
# spends ~10 ms on each), small enough that the few chunks in flight stay far below the dataset's size.
CHUNK_BYTES = 16 << 20
_MAX_CHUNK_ROWS = 65536


@dataclasses.dataclass(frozen=True)
class Source:
    """A user's data source, opened and checked, ready to stream.

    Args:
        kind: str. `"npz"`, `"csv"` or `"images"`.
        path: str. The source file or folder.
        input_key: str. Feature name of the inputs (`"x"` or `"image"`).
        input_shape: tuple of int. Shape of one input.
        input_dtype: np.dtype. `float32`, or `uint8` for images.
        sizes: dict. Examples per split, `{"train": n, "test": m}`.
        chunks: callable. `chunks()` yields `(x, y, test)` numpy chunks of
            the whole source in order; `test` marks the rows of the test split.
        class_names: callable. `class_names()` returns the name of each class
            index; a CSV file's integer labels are known (and checked) once
            `chunks()` has been read to its end.
        own_test: bool. Whether the test split came with the source (else
            it was chosen with a seed).
    """

    kind: str
    path: str
    input_key: str
    input_shape: tuple
    input_dtype: np.dtype
    sizes: dict
    chunks: Callable[[], Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]]
    class_names: Callable[[], tuple]
    own_test: bool = False


def chunk_rows(row_bytes):
    """Rows per chunk for rows of `row_bytes` bytes each (as parsed), between 1 and 65536.

    Example:

    >>> chunk_rows(41 * 8)  # a CSV row of 41 columns, parsed as float64
    51150
    """
    return int(min(_MAX_CHUNK_ROWS, max(1, CHUNK_BYTES // max(1, row_bytes))))


def class_labels(values, where, names=None):
    """Map raw labels to class indices `0..K-1` and class names, or raise naming the problem.

    Integer labels must be exactly `0..K-1` (no gaps, no negatives); float
    labels are refused (a rounded float is not a class); strings are sorted
    and numbered.

    Args:
        values: array-like. Every distinct label value (or all labels).
        where: str. What holds the labels, for messages.
        names: sequence of str or None. Class names for integer labels.

    Returns:
        `(mapping, class_names)`: a dict raw value -> index, and a tuple.

    Example:

    >>> class_labels(["b", "a", "b"], "column 'y'")
    ({'a': 0, 'b': 1}, ('a', 'b'))
    """
    values = np.unique(np.asarray(values))
    if values.size == 0:
        raise ValueError(f"{where} has no labels.")
    if values.dtype.kind in "US":
        strings = [str(v) for v in values]
        integers = _as_integers(strings)
        if integers is None:
            if _as_floats(strings):
                raise ValueError(
                    f"{where} has float labels (e.g. {strings[0]!r}); labels must be integer class "
                    "indices 0..K-1 or class names."
                )
            check_class_names(strings, where)
            return {s: i for i, s in enumerate(strings)}, tuple(strings)
        mapping = dict(zip(strings, integers))
        _check_indices(np.array(sorted(set(integers))), where)
        count = max(integers) + 1
        return mapping, _names(names, count, where)
    if values.dtype.kind == "f":
        raise ValueError(
            f"{where} has float labels ({values.dtype}, e.g. {values[0]!r}); labels must be integer "
            "class indices 0..K-1 (cast with `y.astype(int)` if they are whole numbers)."
        )
    if values.dtype.kind not in "iu":
        raise ValueError(f"{where} has labels of dtype {values.dtype}; expected integers or strings.")
    _check_indices(values, where)
    return {int(v): int(v) for v in values}, _names(names, int(values.max()) + 1, where)


def check_class_names(names, where):
    """Raise naming the first class name holding a control character (a newline, a tab, ...).

    Such a name breaks every line it is printed in: `kerasreg data info`, a report's table, a plot's legend.

    Example:

    >>> check_class_names(["cat", "dog"], "pets/")
    """
    for name in names:
        if any(unicodedata.category(character) == "Cc" for character in name):
            raise ValueError(f"{where}: class name {name!r} holds a control character; class names must be "
                             "printable text (rename it).")


def _check_indices(values, where):
    if values.min() < 0:
        raise ValueError(f"{where} has negative labels (e.g. {int(values.min())}); labels must be 0..K-1.")
    missing = sorted(set(range(int(values.max()) + 1)) - {int(v) for v in values})
    if missing:
        shown = ", ".join(str(m) for m in missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise ValueError(
            f"{where} has labels with gaps: 0..{int(values.max())} without {shown}. Labels must be "
            "every class index 0..K-1 (renumber them, or use class names)."
        )


def _names(names, count, where):
    if names is None:
        return tuple(str(i) for i in range(count))
    if len(names) != count:
        raise ValueError(f"{where} names {len(names)} classes ({', '.join(names)}) but its labels have {count}.")
    return tuple(names)


def _as_integers(strings):
    try:
        return [int(s) for s in strings]
    except ValueError:
        return None


def _as_floats(strings):
    try:
        [float(s) for s in strings]
        return True
    except ValueError:
        return False


def test_mask(num_examples, test_split, seed, where):
    """A boolean mask choosing `round(num_examples * test_split)` test examples with `seed`.

    Example:

    >>> int(test_mask(10, 0.2, 0, "x").sum())
    2
    """
    _checks.fraction(test_split, "test_split")
    num_test = int(round(num_examples * test_split))
    if not 0 < num_test < num_examples:
        raise _checks.invalid("test_split", "a split that leaves at least one example for test and one for "
                              f"training out of the {num_examples} examples of {where}", test_split)
    mask = np.zeros(num_examples, bool)
    mask[np.random.default_rng(seed).permutation(num_examples)[:num_test]] = True
    return mask


def check_finite(x, where, first_row):
    """Raise naming the first row of chunk `x` holding a NaN or infinite value.

    Example:

    >>> check_finite(np.ones((2, 3), np.float32), "a.npz", 0)
    """
    if x.dtype.kind != "f":
        return
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        values = x[row].reshape(-1)
        value = values[~np.isfinite(values)][0]
        raise ValueError(
            f"{where} has a {value} feature value in row {first_row + row}; NaN and infinite values "
            "cannot be trained on. Clean or impute them before importing."
        )
