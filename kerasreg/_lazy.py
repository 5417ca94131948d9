"""Lazy public names (PEP 562): a package lists what it exports in a table; modules load on first use.

TensorFlow, TFDS and matplotlib take seconds to import. With lazy names
`import kerasreg` and `kerasreg list` load none of them, while
`kerasreg.train`, `from kerasreg.data import load_dataset` and friends work
as if everything had been imported eagerly.
"""

import importlib
import sys


def attach(package, exports):
    """Module-level `__getattr__`, `__dir__` and `__all__` for `package`.

    Args:
        package: str. The package's `__name__`.
        exports: dict. Module path (absolute) -> names it provides.

    Returns:
        `(__getattr__, __dir__, __all__)`, to assign in the package's `__init__`.

    Example:

    >>> getattr_, dir_, all_ = attach("pkg", {"json": ["dumps"]})
    >>> getattr_("dumps")([1])
    '[1]'
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    def __dir__():
        return sorted(set(where) | set(vars(sys.modules[package])))

    return __getattr__, __dir__, sorted(where)
