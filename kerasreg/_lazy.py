"""Lazy public names (PEP 562): a package lists what it exports in its `__init__.pyi`; modules load on first use.

The stub is the one list: type checkers, IDEs and the API reference read it
as a stub, and `attach_stub` reads its `from module import name` lines. It
ships beside the package (also where only bytecode is installed).

TensorFlow, TFDS and matplotlib take seconds to import. With lazy names
`import kerasreg` and `kerasreg list` load none of them, while
`kerasreg.train`, `from kerasreg.data import load_dataset` and friends work
as if everything had been imported eagerly.
"""

import ast
import importlib
import pathlib
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


def attach_stub(package, init_file):
    """`attach` with the exports read from the `from module import name` lines of the package's `__init__.pyi`.

    Example:

    >>> __getattr__, __dir__, __all__ = attach_stub(__name__, __file__)  # doctest: +SKIP
    """
    stub = pathlib.Path(init_file).with_name("__init__.pyi")
    exports = {}
    for node in ast.parse(stub.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom):
            exports.setdefault(node.module, []).extend(alias.asname or alias.name for alias in node.names)
    return attach(package, exports)
