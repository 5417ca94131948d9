"""Every docstring example in kerasreg runs as written (examples that need a cluster, a server or minutes say +SKIP)."""

import doctest
import importlib
import pkgutil
import warnings

import pytest

import kerasreg

MODULES = sorted(info.name for info in pkgutil.walk_packages(kerasreg.__path__, "kerasreg.")
                 if info.name != "kerasreg.__main__")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for test in doctest.DocTestFinder().find(module, name):
            runner.run(test)
    assert runner.failures == 0, f"docstring examples of {name} failed: {runner.failures} (output above)"
