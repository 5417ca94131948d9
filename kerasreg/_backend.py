"""Which Keras backend trains, chosen before anything imports Keras; and the JAX settings of kerasreg's work.

Training runs on Keras's JAX backend unless `KERAS_BACKEND=tensorflow` says
otherwise; exports are always written by TensorFlow (see
`kerasreg.export.writer`). A Keras process has one backend, fixed when
Keras is imported, so work for the other backend runs in a worker process
(`kerasreg._processes`). Setting `KERAS_BACKEND` (when the user chose none)
is the only thing `import kerasreg` changes in the process.

`jax_settings()` applies JAX settings around kerasreg's own work
(building, training, MC-dropout predictions) and restores them afterwards,
so the user's own JAX code draws the numbers and compiles the way it always
did:

- random numbers (dropout masks, initial weights) come from JAX's
  non-partitionable threefry (faster on one CPU), unless
  `JAX_THREEFRY_PARTITIONABLE` is set: a seed then draws the same numbers in
  every process of a run, whatever was imported first;
- the JAX persistent compilation cache, in `$KERASREG_CACHE_DIR/jax/<jax version>`
  (default `~/.cache/kerasreg/jax/<jax version>`): a rerun of an architecture (another
  seed, a resumed run, a study worker) loads its compiled steps instead of
  compiling them again. `KERASREG_CACHE_DIR=off` turns it off; a cache
  folder the user chose (`JAX_COMPILATION_CACHE_DIR` or
  `jax.config.update("jax_compilation_cache_dir", ...)`) wins, with the
  user's thresholds.

`diagnose` uses the cache alone (`compilation_cache()`): its epoch of `fit`
continues the user's model, so it draws from the user's generator.
"""

import contextlib
import functools
import importlib.metadata
import os
import pathlib
import sys

from kerasreg import _checks

BACKENDS = ("jax", "tensorflow")
DEFAULT_BACKEND = "jax"
# Several study workers share one cache: a size limit makes JAX take a file
# lock around every read and write, so no worker reads a half-written entry.
CACHE_MAX_BYTES = 2 * 1024**3


def _invalid_backend_message(name, source):
    return (
        f"kerasreg trains on the Keras backends {', '.join(map(repr, BACKENDS))}. "
        f"Received: {source}={name!r}. Unset it (JAX is the default) or choose one of those."
    )


def check_backend(name, argument="backend"):
    """Return `name` if it is a training backend kerasreg supports, else raise a ValueError.

    Example:

    >>> check_backend("jax")
    'jax'
    """
    if name not in BACKENDS:
        raise _checks.invalid(argument, f"one of {', '.join(map(repr, BACKENDS))}", name)
    return name


def cache_dir():
    """The JAX compilation cache folder kerasreg uses, or None when the cache is off.

    Example:

    >>> cache_dir()  # doctest: +SKIP
    PosixPath('/home/me/.cache/kerasreg/jax/0.10.2')
    """
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return pathlib.Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    root = os.environ.get("KERASREG_CACHE_DIR", "")
    if root.lower() in ("off", "0", "none", "false"):
        return None
    root = pathlib.Path(root).expanduser() if root else pathlib.Path.home() / ".cache" / "kerasreg"
    # One folder per JAX release: a release cannot use another's entries (its version is part of every key), and
    # each release's size limit then counts its own entries only.
    return root / "jax" / importlib.metadata.version("jax")


# Cache folders this process has checked for entries a killed process left unfinished.
_checked_caches = set()


def _drop_unfinished_entries(path):
    """Delete the entries of JAX cache folder `path` that have no access-time file beside them.

    JAX writes an entry's `-cache` file, then its `-atime` file, under the
    folder's `.lockfile`; a process killed between the two leaves an entry
    that breaks the cache for good: before every write JAX reads the access
    time of every entry, so each later write fails and nothing new is cached.
    Under the same lock no write is half done, so such an entry is a leftover.
    """
    import filelock

    if path in _checked_caches or not path.is_dir():
        return
    _checked_caches.add(path)
    try:
        with filelock.FileLock(path / ".lockfile", timeout=10):
            names = set(os.listdir(path))
            for name in names:
                if name.endswith("-cache") and name.removesuffix("-cache") + "-atime" not in names:
                    (path / name).unlink(missing_ok=True)
    except (filelock.Timeout, OSError):
        pass  # a busy or read-only cache folder is JAX's to report when it writes


def _cache_settings(jax):
    """The JAX options that turn on kerasreg's compilation cache, or {} when it is off or the user chose one."""
    path = cache_dir()
    if path is None or jax.config.jax_compilation_cache_dir:
        return {}
    _drop_unfinished_entries(path)
    return {
        "jax_compilation_cache_dir": str(path),
        # JAX caches only compilations slower than 1 s by default; a small
        # model's steps compile faster than that, and they are what reruns repeat.
        "jax_persistent_cache_min_compile_time_secs": 0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
        "jax_compilation_cache_max_size": CACHE_MAX_BYTES,
    }


@contextlib.contextmanager
def compilation_cache():
    """Within the block, JAX compiles through kerasreg's compilation cache; the previous options are restored on exit.

    Does nothing unless Keras runs on JAX, or when the cache is off or the
    user chose a cache of their own. A cache this block opened is closed
    again, so later compilations of the user's own code are not written to
    kerasreg's folder.

    Example:

    >>> with compilation_cache():
    ...     pass
    """
    if backend() != "jax":
        yield
        return
    import jax
    from jax.experimental.compilation_cache import compilation_cache as jax_cache

    updates = _cache_settings(jax)
    saved = {name: getattr(jax.config, name) for name in updates}
    for name, value in updates.items():
        jax.config.update(name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            jax.config.update(name, value)
        if updates:
            jax_cache.reset_cache()


@contextlib.contextmanager
def jax_settings():
    """Run a block of kerasreg's work with its JAX settings; the previous ones are restored on exit.

    Does nothing unless Keras runs on JAX. The threefry variant is set for
    this thread only; the compilation cache is `compilation_cache()`'s.

    Example:

    >>> with jax_settings():
    ...     pass
    """
    if backend() != "jax":
        yield
        return
    import jax

    with contextlib.ExitStack() as stack:
        if "JAX_THREEFRY_PARTITIONABLE" not in os.environ:
            stack.enter_context(jax.threefry_partitionable(False))
        stack.enter_context(compilation_cache())
        yield


def with_jax_settings(function):
    """Decorator: `function` runs inside `jax_settings()`.

    Example:

    >>> @with_jax_settings
    ... def draw():
    ...     pass
    """
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with jax_settings():
            return function(*args, **kwargs)

    return wrapper


def backend():
    """The Keras backend of this process: `"jax"` or `"tensorflow"`.

    Example:

    >>> backend() in ("jax", "tensorflow")
    True
    """
    import keras

    return keras.backend.backend()


def verify():
    """Raise an ImportError unless the imported Keras runs on a backend kerasreg supports.

    Called once Keras is imported: a backend picked by `~/.keras/keras.json`
    in a process that imported Keras before kerasreg shows up only then.

    Example:

    >>> verify() in BACKENDS
    True
    """
    name = backend()
    if name not in BACKENDS:
        raise ImportError(_invalid_backend_message(name, "keras.backend.backend()"))
    return name


def available_cores():
    """The CPU cores this process may run on (a study worker gets its own share of them).

    A run's numbers can depend on it: XLA splits some reductions by thread
    count, so manifests record it next to the backend.

    Example:

    >>> available_cores() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def backend_env(name, env=None):
    """A copy of `env` (default `os.environ`) in which a new process imports Keras with backend `name`.

    The child also imports this very kerasreg package (its folder leads
    `PYTHONPATH`), whatever its working directory.

    Example:

    >>> backend_env("tensorflow", {})["KERAS_BACKEND"]
    'tensorflow'
    """
    check_backend(name)
    env = dict(os.environ if env is None else env)
    env["KERAS_BACKEND"] = name
    root = str(pathlib.Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _choose():
    if "keras" in sys.modules:
        # Keras is already imported (its backend came from KERAS_BACKEND or
        # ~/.keras/keras.json at that moment): that is the backend now.
        import keras

        name, source = keras.backend.backend(), "keras.backend.backend()"
    else:
        name = os.environ.setdefault("KERAS_BACKEND", DEFAULT_BACKEND)
        source = "KERAS_BACKEND"
    if name not in BACKENDS:
        raise ImportError(_invalid_backend_message(name, source))
    # Subprocesses started from here inherit the same backend.
    os.environ["KERAS_BACKEND"] = name
    return name


_choose()
