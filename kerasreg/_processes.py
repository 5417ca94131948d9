"""The one way kerasreg runs work in another process: a standard-library process pool, spawned.

Keras fixes its backend when it is imported, so work for the other backend
(a SavedModel written by TensorFlow for a JAX run, a run on the backend the
caller did not import) and parallel study runs go to fresh interpreters:
`concurrent.futures.ProcessPoolExecutor` with the `spawn` context (no
forked copy of a running JAX or TensorFlow). What a call raises in the
worker is raised in the caller with its own type, the worker's traceback
chained to it.

- `Pool(workers, backend=...)`: a `ProcessPoolExecutor` whose workers import
  Keras on `backend` and die with the process that started them.
- `call_on(backend, fn, *args)`: `fn(*args)` in one long-lived worker per
  backend, started on first use and reused by later calls; a worker that
  died is named in a `WorkerDied` error and replaced at the next call;
  `shutdown()` ends those workers.
"""

import concurrent.futures
import contextlib
import multiprocessing
import multiprocessing.util
import os
import sys
import threading

from kerasreg import _backend

SPAWN = multiprocessing.get_context("spawn")


class WorkerDied(RuntimeError):
    """The process running a call ended (killed, out of memory) before answering."""


def _die_with_parent():
    """Ask Linux to kill this process when its parent dies: an interrupted study leaves no worker training."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)


def exit_without_teardown(code=0):
    """End this process with `code` once stdout and stderr are flushed, skipping the interpreter's teardown.

    Registered as a process's first exit handler (they run last registered
    first), it runs after all the others.

    Example:

    >>> import atexit
    >>> atexit.register(exit_without_teardown)  # doctest: +SKIP
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a reader that went away
            pass
    os._exit(code)


def _start_worker(initializer, initargs):
    import atexit
    import signal

    _die_with_parent()
    # A spawned worker ends through a normal interpreter exit, and tearing an interpreter down once TensorFlow or
    # JAX is loaded takes about a second. Registered before they load, this runs after their exit handlers and
    # ends the process there; a pool's worker that gets this far exits with 0 anyway (killed, it never does).
    atexit.register(exit_without_teardown)
    # Ctrl-C reaches the whole process group: the process that started this worker decides, and stops it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def _environment(env):
    """`os.environ` replaced by `env` (when given) while a worker is spawned: it reads it as it starts."""
    if env is None:
        yield
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _main_not_rerun():
    """The caller's script is hidden from workers spawned meanwhile, so they do not run it again.

    A spawned process imports the parent's `__main__` by path (as
    `__mp_main__`), which runs every unguarded line of a user's script, such
    as the README's quickstart, a second time. kerasreg's workers only call
    functions importable by name, so they need none of it.
    """
    main = sys.modules.get("__main__")
    hidden = {key: main.__dict__.pop(key) for key in ("__file__", "__spec__")
              if main is not None and key in main.__dict__}
    if main is not None and "__spec__" in hidden:
        main.__spec__ = None  # multiprocessing reads the attribute; None means "no module name to import"
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.update(hidden)


class Pool(concurrent.futures.ProcessPoolExecutor):
    """A `ProcessPoolExecutor` of spawned workers that import Keras on `backend` and die with this process.

    Args:
        workers: int. Worker processes. Defaults to `1`.
        backend: str or None. Keras backend of the workers. Defaults to
            this process's `KERAS_BACKEND`.
        initializer: callable or None. Run in each worker as it starts.
            Defaults to `None`.
        initargs: tuple. Arguments of `initializer`. Defaults to `()`.

    Example:

    >>> with Pool(2) as pool:
    ...     list(pool.map(abs, [-1, 2]))
    [1, 2]
    """

    def __init__(self, workers=1, *, backend=None, initializer=None, initargs=()):
        super().__init__(max_workers=workers, mp_context=SPAWN, initializer=_start_worker,
                         initargs=(initializer, initargs))
        self._env = _backend.backend_env(backend) if backend is not None else None
        self._started = {}

    def submit(self, fn, /, *args, **kwargs):
        # A spawn pool starts its workers inside `submit`; they read KERAS_BACKEND as they import Keras.
        with _environment(self._env), _main_not_rerun():
            future = super().submit(fn, *args, **kwargs)
        self._started.update(self._processes or {})
        return future

    def terminate(self):
        """Kill the workers at once and drop the work not yet started (an interrupt, a failure)."""
        for process in self._started.values():
            if process.is_alive():
                process.kill()
        for process in self._started.values():
            process.join(timeout=5)
        self.shutdown(wait=False, cancel_futures=True)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:  # interrupted or failed: waiting for the running work would keep it writing
            self.terminate()
            return False
        return super().__exit__(exc_type, exc, tb)

    def how_workers_ended(self):
        """How the workers that have ended did, e.g. "was killed by SIGKILL" or "exited with code 1"."""
        import signal

        endings = []
        for process in self._started.values():
            # A dead worker is reaped within milliseconds, but a loaded machine was seen to take over a second.
            process.join(timeout=5)
            code = process.exitcode
            if code is not None and code < 0:
                endings.append(f"was killed by {signal.Signals(-code).name}")
            elif code:
                endings.append(f"exited with code {code}")
        return ", ".join(dict.fromkeys(endings)) or "ended"


_POOLS = {}
_POOLS_LOCK = threading.Lock()


def _in_folder(folder, fn, *args, **kwargs):
    os.chdir(folder)
    return fn(*args, **kwargs)


def call_on(backend, fn, *args, **kwargs):
    """Return `fn(*args, **kwargs)` computed in this process's worker on Keras backend `backend`.

    The worker is started on first use and kept for later calls (its
    imports are paid once), and runs each call in the caller's current
    folder, so relative paths mean what they mean here. `fn` must be
    importable by name.

    Raises:
        WorkerDied: the worker ended before answering (it is replaced at the
            next call).
        Exception: whatever `fn` raised, with its own type.

    Example:

    >>> call_on("tensorflow", abs, -3)  # doctest: +SKIP
    3
    """
    with _POOLS_LOCK:
        pool = _POOLS.get(backend)
        if pool is None:
            if not _POOLS:  # before multiprocessing closes its queues (priority 10) and joins children at exit
                multiprocessing.util.Finalize(None, shutdown, exitpriority=100)
            pool = _POOLS[backend] = Pool(1, backend=backend)
    try:
        return pool.submit(_in_folder, os.getcwd(), fn, *args, **kwargs).result()
    except (KeyboardInterrupt, SystemExit):
        # Interrupted while the worker works: stop it before the caller removes what it was writing.
        with _POOLS_LOCK:
            if _POOLS.get(backend) is pool:
                del _POOLS[backend]
        pool.terminate()
        raise
    except concurrent.futures.process.BrokenProcessPool:
        with _POOLS_LOCK:
            if _POOLS.get(backend) is pool:
                del _POOLS[backend]
        pool.shutdown(wait=False)
        ended = pool.how_workers_ended()
        # Killed by a signal, it wrote nothing; exited on its own, its error is what it printed.
        cause = ("from outside or by the system when out of memory" if "killed" in ended
                 else "its error, if any, is on stderr above")
        raise WorkerDied(
            f"The {backend} worker process {ended} before answering {getattr(fn, '__name__', fn)!r} "
            f"({cause}).") from None


def shutdown():
    """End the workers started by `call_on` (they are started again when needed).

    A spawned process joins its children as it exits, before the standard
    library would tell a pool's idle workers to stop: so a spawned process
    that used `call_on` (a JAX run exporting through TensorFlow) calls this
    at exit, or it would wait for ever.

    Example:

    >>> shutdown()
    """
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.shutdown(wait=True)
