"""Executors: where the runs of a study train. One interface, `Executor.map(configs)`.

`LocalExecutor` trains in this process (one worker) or a spawned process
pool. Workers share nothing but the study's `runs/` folder they export into.
"""

import concurrent.futures
import contextlib
import multiprocessing
import os
import sys

from kerasreg import _backend

from kerasreg.runs import run


def _init_worker(threads):
    """Bound TensorFlow's thread pools so workers do not oversubscribe cores, and die with the study.

    Without the parent-death signal, killing the study process would leave
    its workers training (and exporting) in the background.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def _run_one(config, runs_dir, resume):
    """Train and export one grid point; returns `(name, error or None)`."""
    try:
        run(config, out=runs_dir, resume=resume, verbose=0)
        return config.run_name(), None
    except Exception as exc:  # one failed run must not stop the study
        return config.run_name(), f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def _spawn_environment(backend):
    """`os.environ` as spawned workers must see it: Keras on `backend`, this kerasreg importable."""
    saved = dict(os.environ)
    os.environ.update(_backend.backend_env(backend))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def execute(configs, runs_dir, resume, workers, backend=None):
    """Yield `(name, error)` per run as runs finish.

    One worker trains in this process, so placements and kinds registered
    in it are available (a run on another backend than this process's
    trains in a subprocess); more workers are spawned processes on
    `backend` (default: this process's), each importing kerasreg afresh
    (register custom entries in an imported module then).
    """
    if workers == 1:
        for config in configs:
            yield _run_one(config, runs_dir, resume)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    # Workers start while the pool is in use, and read KERAS_BACKEND as they import Keras.
    with _spawn_environment(backend or _backend.backend()), concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker, initargs=(threads,),
    ) as pool:
        futures = [pool.submit(_run_one, c, runs_dir, resume) for c in configs]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def default_workers():
    """Parallel training processes used when none are asked for: one per core, at most 4.

    Example:

    >>> 1 <= default_workers() <= 4
    True
    """
    return max(1, min(4, os.cpu_count() or 1))
