"""Session-wide test setup.

Every test process prepares datasets into one temporary folder, exported as
`$KERASREG_DATA_DIR` before kerasreg is imported: no test writes to
~/tensorflow_datasets, and the built-in datasets are generated once per
session instead of once per test module.
"""

import atexit
import os
import shutil
import tempfile

# The default training backend; tests/test_backends.py reruns its parity
# checks under TensorFlow in one subprocess.
os.environ.setdefault("KERAS_BACKEND", "jax")
# Under pytest-xdist the controller makes the folder before it starts the workers, which inherit it (the data
# directory's own lock makes them prepare each dataset once); the process that made it removes it.
_OWNER = "KERASREG_TEST_DATA_DIR_OWNER"
if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get(_OWNER):
    _SESSION_DATA_DIR = os.environ["KERASREG_DATA_DIR"]
else:
    _SESSION_DATA_DIR = tempfile.mkdtemp(prefix="kerasreg-test-data-")
    os.environ["KERASREG_DATA_DIR"] = _SESSION_DATA_DIR
    os.environ[_OWNER] = str(os.getpid())
    atexit.register(shutil.rmtree, _SESSION_DATA_DIR, ignore_errors=True)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def data_dir():
    """The session's dataset folder, the same as `$KERASREG_DATA_DIR`."""
    return _SESSION_DATA_DIR


@pytest.fixture(scope="module")
def quick_compile():
    """Compile with XLA's optimizations off for one test module, and in the processes it starts.

    The suite's models are tiny: for a file that builds and trains many of them for an epoch or two, compiling
    costs more than running, and XLA's optimization passes are most of the compile time (test_factory's matrix
    takes less than half as long without them). Files whose models train many epochs run slower without them, so
    a module opts in with `pytestmark = pytest.mark.usefixtures("quick_compile")`. The flag is part of JAX's
    compilation-cache key, so cached programs of either kind never mix.
    """
    import jax

    previous = jax.config.values["jax_disable_most_optimizations"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")  # read by the subprocesses the module starts
        jax.config.update("jax_disable_most_optimizations", True)
        try:
            yield
        finally:
            jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture(autouse=True)
def _registrations_end_with_the_test(monkeypatch):
    """Models, placements and layer kinds a test registers are gone after it: no test sees another's."""
    from kerasreg.models import kinds, placements, zoo

    for registry in (zoo._MODELS, placements._PLACEMENTS, kinds._DROPOUTS, kinds._NORMS):
        monkeypatch.setattr(registry, "_items", dict(registry._items))


# The files that take longest, longest first (seconds per file in a full run, Nov 2026). Two workers take whole files
# (`--dist loadfile`) in collection order (`--no-loadscope-reorder`; xdist's own order is by number of tests, which
# started test_ray's few long tests last and left one worker idle for their tail), so these start first and the
# many short files fill the end.
_LONGEST_FIRST = (
    "test_ray.py", "test_reliability.py", "test_backends.py", "test_factory.py", "test_docs.py",
    "test_tracking.py", "test_tuning.py", "test_notebooks.py", "test_startup.py", "test_data_import.py",
    "test_study.py", "test_tuning_distributed.py", "test_export.py", "test_locks.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
