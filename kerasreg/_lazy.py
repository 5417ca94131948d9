"""Lazy public names (PEP 562): a package lists what it exports; modules load on first use.

Also the one import hook kerasreg needs: run something around the first
import of a heavy module (quiet TensorFlow start-up, register kerasreg's
Keras classes once Keras is loaded).

TensorFlow, TFDS and matplotlib take seconds to import. With lazy names
`import kerasreg` and `kerasreg list` load none of them, while
`kerasreg.train`, `from kerasreg.data import load_dataset` and friends work
as if everything had been imported eagerly.
"""

import ast
import importlib
import importlib.abc
import importlib.util
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


def attach_typed(package, init_file):
    """`attach` with the exports read from the package's own `if TYPE_CHECKING:` imports.

    The `TYPE_CHECKING` block is the one list of what the package exports:
    type checkers and IDEs read it as ordinary imports, and at run time it
    becomes the table of lazy names.

    Example:

    >>> __getattr__, __dir__, __all__ = attach_typed(__name__, __file__)  # doctest: +SKIP
    """
    tree = ast.parse(pathlib.Path(init_file).read_text())
    exports = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for item in node.body:
                if isinstance(item, ast.ImportFrom):
                    exports.setdefault(item.module, []).extend(alias.name for alias in item.names)
    return attach(package, exports)


class _WrappedLoader(importlib.abc.Loader):
    """Runs the real loader inside `around`, then gets out of the module's way."""

    def __init__(self, loader, around):
        self.loader, self.around = loader, around

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        try:
            self.around(lambda: self.loader.exec_module(module))
        finally:
            module.__loader__ = module.__spec__.loader = self.loader


class _FirstImport(importlib.abc.MetaPathFinder):
    """Finds one module like the rest of `sys.meta_path` does, with a wrapped loader; gone once it loads.

    It stays in place until the module is actually executed: probes such as
    `importlib.util.find_spec("tensorflow")` (Keras asks whether TensorFlow is
    installed long before importing it) must not use it up.
    """

    def __init__(self, name, around):
        self.name, self.around = name, around
        self._searching = False

    def find_spec(self, name, path=None, target=None):
        if name != self.name or self._searching:
            return None
        if name in sys.modules:  # loaded past this hook: nothing left to wrap
            sys.meta_path.remove(self)
            return None
        self._searching = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._searching = False
        if spec is not None and spec.loader is not None:
            spec.loader = _WrappedLoader(spec.loader, self._around_once)
        return spec

    def _around_once(self, do_import):
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        self.around(do_import)


def on_first_import(name, around):
    """Run the first import of top-level module `name` as `around(do_import)`.

    Returns the hook (for `sys.meta_path.remove`), or `None` when `name` is
    already imported, in which case nothing is installed.

    Example:

    >>> hook = on_first_import("antigravity_doc_example", lambda do_import: do_import())
    >>> sys.meta_path.remove(hook)
    """
    if name in sys.modules:
        return None
    hook = _FirstImport(name, around)
    sys.meta_path.insert(0, hook)
    return hook


def register_keras_classes():
    """Register kerasreg's Keras classes now if Keras is loaded, else right after its first import.

    `keras.saving.load_model("model.keras")` then finds `ZooFunctional`,
    `ZooSequential` and `Uout` after a plain `import kerasreg`, without
    `import kerasreg` itself loading Keras.

    Example:

    >>> register_keras_classes()
    """
    def import_then_register(do_import):
        do_import()
        importlib.import_module("kerasreg.models.factory")

    if on_first_import("keras", import_then_register) is None:
        importlib.import_module("kerasreg.models.factory")
