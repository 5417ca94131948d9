"""Every docstring example in kerasreg runs as written (examples that need a cluster, a server or minutes say +SKIP).

The examples register placements and models of their own, so they run in a fresh process of their own, where
they cannot change the registries the other tests see.
"""

from helpers import run_python

RUN_ALL = """
import doctest, importlib, os, pkgutil, sys, warnings
import kerasreg

os.chdir(sys.argv[1])  # examples that write files write them here
warnings.simplefilter("ignore")
names = sorted(i.name for i in pkgutil.walk_packages(kerasreg.__path__, "kerasreg.") if i.name != "kerasreg.__main__")
failed, attempted = [], 0
for name in names:
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test)
    attempted += runner.tries
    if runner.failures:
        failed.append(name)
print("attempted", attempted, "modules", len(names), "failed", ",".join(failed) or "none")
sys.exit(1 if failed else 0)
"""


def test_docstring_examples_run(tmp_path):
    done = run_python(RUN_ALL, tmp_path, timeout=900)
    summary = done.stdout.strip().splitlines()[-1].split()
    assert int(summary[1]) > 200 and int(summary[3]) > 50, done.stdout
