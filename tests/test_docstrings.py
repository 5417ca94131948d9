"""Every docstring example in kerasreg runs as written (examples that need a cluster, a server or minutes say +SKIP).

The examples register placements and models of their own: those registrations end with the test (conftest.py).
"""

import doctest
import importlib
import pkgutil
import warnings

import kerasreg


def test_docstring_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    names = sorted(i.name for i in pkgutil.walk_packages(kerasreg.__path__, "kerasreg.")
                   if i.name != "kerasreg.__main__")
    failed, attempted = [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            module = importlib.import_module(name)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
            for test in doctest.DocTestFinder().find(module, name):
                runner.run(test)
            attempted += runner.tries
            if runner.failures:
                failed.append(name)
    assert attempted > 200 and len(names) > 50
    assert failed == []
