"""Values as strict JSON: plain types only, NaN and infinity as null (strict JSON has neither)."""

import math
import pathlib


def jsonable(value):
    """`value` with every part a plain JSON type; NaN and infinity become `None`, anything else its `repr`.

    NumPy scalars and arrays become Python numbers and lists; paths become strings.

    Example:

    >>> import numpy as np
    >>> jsonable({"acc": np.float32(0.5), "gap": float("nan"), "shape": (2, np.int64(3))})
    {'acc': 0.5, 'gap': None, 'shape': [2, 3]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if hasattr(value, "tolist"):  # NumPy scalars and arrays, without importing NumPy here
        return jsonable(value.tolist())
    return repr(value)
