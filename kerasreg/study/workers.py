"""The local executor's worker processes: spawned, pinned to cores of their own, and startable ahead of time.

A worker imports TensorFlow, JAX and kerasreg's training code as it starts,
about 4 s on one core. `start_early` lets the `kerasreg study` command start
them before it imports the same code itself, so the imports run side by side
instead of one after the other; the `LocalExecutor` of the same size and
backend then takes those workers (`take`) instead of starting its own.
"""

import contextlib
import os
import queue

from kerasreg import _processes

# Workers started by `start_early`, waiting for their executor: {(workers, backend): pool}.
_early = {}


def default_workers():
    """Parallel training processes used when none are asked for: one per core, at most 4.

    Example:

    >>> 1 <= default_workers() <= 4
    True
    """
    return max(1, min(4, os.cpu_count() or 1))


def _init_worker(core_sets, threads):
    """Give this worker its own cores, bound TensorFlow's thread pools to them, and import the training code.

    Two workers whose thread pools share all cores keep evicting each
    other: measured here, two `resnet_small` runs side by side took 0.56 s
    per epoch each on shared cores and about 0.45 s each on one core apiece.
    """
    cores = None
    if core_sets is not None:
        with contextlib.suppress(queue.Empty):  # more workers than sets: this one shares the cores
            cores = core_sets.get_nowait()
    if cores is not None:
        os.sched_setaffinity(0, cores)
    import tensorflow as tf

    threads = len(cores) if cores is not None else threads
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    # The first run's code, imported now: a worker started early is ready when its first run arrives.
    import kerasreg.runs  # noqa: F401
    import kerasreg.study.artifacts  # noqa: F401


def _worker_core_sets(workers):
    """Disjoint sets of this process's cores, one per worker; None when there are fewer cores than workers.

    The sets are equal (a remainder core stays free): a run's numbers depend
    on its thread count, so every run of a study must get the same one.
    """
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if workers > len(cores):
        return None
    size = len(cores) // workers
    return [cores[i * size:(i + 1) * size] for i in range(workers)]


def start(workers, backend):
    """A process pool of `workers` spawned workers on Keras backend `backend`, every one started now.

    Example:

    >>> with start(2, "jax") as pool:  # doctest: +SKIP
    ...     pool.submit(train_to_artifacts, config, work_dir, False).result()
    """
    core_sets = _worker_core_sets(workers)
    core_queue = None
    if core_sets is not None:
        core_queue = _processes.SPAWN.Queue()
        for cores in core_sets:
            core_queue.put(cores)
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = _processes.Pool(workers, backend=backend, initializer=_init_worker, initargs=(core_queue, threads))
    for _ in range(workers):
        pool.submit(os.getpid)  # a spawn pool starts a process per submit while none is idle
    return pool


def start_early(workers=None, backend=None):
    """Start the workers a `LocalExecutor(workers, backend)` will need, while this process does other work.

    `backend` defaults to `KERAS_BACKEND`, which `import kerasreg` sets when
    the user chose none. Workers no executor takes are stopped by `stop_early`.

    Example:

    >>> start_early(2)  # doctest: +SKIP
    """
    key = (workers or default_workers(), backend or os.environ.get("KERAS_BACKEND"))
    if key[1] is not None and key not in _early:
        _early[key] = start(*key)


def take(workers, backend):
    """The workers `start_early` started for this size and backend, else a pool started now.

    Example:

    >>> pool = take(2, "jax")  # doctest: +SKIP
    """
    return _early.pop((workers, backend), None) or start(workers, backend)


def stop_early():
    """Stop the workers `start_early` started that no executor took.

    Example:

    >>> stop_early()
    """
    while _early:
        _early.popitem()[1].terminate()
