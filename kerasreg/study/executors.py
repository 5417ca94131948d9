"""Executors: where the runs of a study train. One interface: `start()`, `map(configs, work_root, resume)`, `close()`.

Both executors are shared-nothing: a worker trains one run in a run
directory of its own and returns `RunArtifacts` (or the error); the driver
alone writes the study folder. Runs are deterministic by seed, so a run
gives the same metrics whichever executor, process or node trained it.

- `LocalExecutor`: this process (one worker) or a spawned process pool on
  this machine; the embedded default, no service needed. Run directories sit
  in the study's `runs/.work/`, so `resume=True` continues a killed study's
  half-trained runs.
- `RayExecutor`: tasks on an existing Ray cluster (`pip install
  "kerasreg[ray]"`), one CPU each. Each task trains in a temporary folder
  on its node; a node lacking the study's imported dataset receives it from
  the driver first (`kerasreg.data.transfer`: checksummed, once per node).
  A task whose node dies is retried on another node; a run that fails on
  its own (e.g. a NaN loss) is reported once, never retried.
"""

import concurrent.futures
import dataclasses
import os
import shutil
import tempfile
import time

from kerasreg import _backend, _checks, _network
from kerasreg.runs import train_in
from kerasreg.study.artifacts import pack
from kerasreg.study.config import EXECUTORS
from kerasreg.study.workers import default_workers, take

# A Ray task whose node dies is retried this many times (on other nodes).
RAY_NODE_RETRIES = 3


@dataclasses.dataclass
class RunOutcome:
    """One finished grid point: its artifacts, or the error that ended it.

    Attributes:
        name: str. The run name.
        artifacts: `RunArtifacts` or None when the run failed.
        error: str or None. `"<ExceptionType>: <message>"` of a failed run.
        node: str. Where it trained (`"local"`, or the Ray node's IP and id).
        attempts: int. How many times it was started (more than 1: retried after a node died).
        seconds: float. Wall time of the worker's training, evaluation and packing of the run.
    """

    name: str
    artifacts: object = None
    error: str = None
    node: str = "local"
    attempts: int = 1
    seconds: float = 0.0


def train_to_artifacts(config, work_dir, resume):
    """Train one grid point in `work_dir` and return its `RunOutcome` (errors are caught, never raised).

    Example:

    >>> outcome = train_to_artifacts(RunConfig(epochs=1), "/tmp/kerasreg_doc_work", False)  # doctest: +SKIP
    >>> outcome.error is None  # doctest: +SKIP
    True
    """
    name = config.run_name()
    start = time.perf_counter()
    try:
        result = train_in(config, work_dir, resume=resume, verbose=0)
        return RunOutcome(name, artifacts=pack(name, result, work_dir), seconds=time.perf_counter() - start)
    except Exception as exc:  # one failed run must not stop the study
        return RunOutcome(name, error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - start)


class LocalExecutor:
    """Train in this process (`workers=1`) or in `workers` spawned processes on this machine.

    One worker on this process's backend trains in this process, so
    placements and kinds registered in it are available; more workers, or a
    backend other than this process's, are spawned processes, each importing
    kerasreg afresh (register custom entries in an imported module then).

    Args:
        workers: int. Parallel training processes. Defaults to `default_workers()`.
        backend: str or None. Keras backend the runs train on. Defaults to
            this process's.

    Example:

    >>> LocalExecutor(workers=1).describe()
    'local (1 worker)'
    """

    name = "local"

    def __init__(self, workers=None, backend=None):
        self.workers = _checks.positive_int(default_workers() if workers is None else workers, "workers")
        self.backend = _backend.check_backend(backend or _backend.backend())
        self._pool = None

    def describe(self):
        """One line saying where runs train."""
        return f"local ({self.workers} worker{'s' if self.workers > 1 else ''})"

    def _in_process(self):
        return self.workers == 1 and self.backend == _backend.backend()

    def start(self):
        """Start the worker processes now, so they import while this process prepares the runs.

        `map` uses them; `close` stops them if `map` never does.
        """
        if self._pool is None and not self._in_process():
            self._pool = take(self.workers, self.backend)

    def close(self):
        """Stop workers `start` started that `map` did not use."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    def map(self, configs, work_root, resume):
        """Yield a `RunOutcome` per config as runs finish; run directories are `work_root/<name>`."""
        jobs = [(config, os.path.join(work_root, config.run_name()), resume) for config in configs]
        if self._in_process():
            for job in jobs:
                yield train_to_artifacts(*job)
            return
        self.start()
        pool, self._pool = self._pool, None
        with pool:
            futures = [pool.submit(train_to_artifacts, *job) for job in jobs]
            for future in concurrent.futures.as_completed(futures):
                yield future.result()


def _ray_task(config, attempts, shipments):
    """Body of one Ray task: count the attempt, fetch a dataset this node lacks, train here, return the outcome."""
    import ray

    from kerasreg.data.transfer import ensure_dataset

    attempt = ray.get(attempts.start.remote(config.run_name()))
    context = ray.get_runtime_context()
    node = f"{ray.util.get_node_ip_address()}/{context.get_node_id()[:8]}"
    try:
        # The package refs sit inside a list, so Ray leaves them unfetched unless this node lacks the dataset.
        for name, source_sha256, package in shipments:
            ensure_dataset(name, source_sha256, lambda: ray.get(package), config.data_dir)
    except Exception as exc:  # reported as the run's failure, like any other
        return RunOutcome(config.run_name(), error=f"{type(exc).__name__}: {exc}", node=node, attempts=attempt)
    work_dir = tempfile.mkdtemp(prefix="kerasreg-run-")
    try:
        outcome = train_to_artifacts(config, work_dir, False)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return dataclasses.replace(outcome, node=node, attempts=attempt)


def _shipments(ray, configs):
    """`(name, source sha256, ref to its package)` of every imported dataset the configs use."""
    from kerasreg.data.transfer import pack_dataset

    shipments = []
    for name, data_dir in sorted({(c.dataset, c.data_dir) for c in configs}, key=str):
        package = pack_dataset(name, data_dir)
        if package is not None:
            shipments.append((name, package.source_sha256, ray.put(package)))
    return shipments


class _AttemptCounter:
    """Counts how often each run was started, so retries after a node died can be reported."""

    def __init__(self):
        self.counts = {}

    def start(self, name):
        self.counts[name] = self.counts.get(name, 0) + 1
        return self.counts[name]


def check_reachable(address, timeout=3.0):
    """Raise a ValueError within `timeout` seconds unless `HOST:PORT` accepts a TCP connection.

    Example:

    >>> check_reachable("127.0.0.1:1", timeout=0.5)
    Traceback (most recent call last):
    ...
    ValueError: Cannot reach a Ray cluster at 127.0.0.1:1 ...
    """
    host, port = _network.parse_address(address, "address", "HOST:PORT of a Ray head node, e.g. 127.0.0.1:6379")
    try:
        _network.probe(host, port, timeout=timeout)
    except OSError as exc:
        raise ValueError(
            f"Cannot reach a Ray cluster at {address} ({exc.strerror or exc}). Start one with "
            f"`ray start --head --port={port}` on {host}, or check the address."
        ) from None


class RayExecutor:
    """Train each run as a task on a Ray cluster (one CPU per task).

    Args:
        address: str or None. `HOST:PORT` of the cluster's head node, as
            `ray start --head` prints it. `None` uses `$RAY_ADDRESS`, else
            starts a Ray instance on this machine for the study.

    Raises:
        ImportError: Ray is not installed (the message says what to install).
        ValueError: the address is malformed or unreachable (within seconds).

    Example:

    >>> executor = RayExecutor("127.0.0.1:6379")  # doctest: +SKIP
    """

    name = "ray"
    workers = None  # the cluster's CPUs are known only once connected

    def __init__(self, address=None, backend=None):
        self.backend = _backend.check_backend(backend or _backend.backend())
        try:
            import ray  # noqa: F401  (imported here to fail before anything trains)
        except ImportError:
            raise ImportError(
                "The ray executor needs Ray. Install it with: pip install \"kerasreg[ray]\""
            ) from None
        self.address = address or os.environ.get("RAY_ADDRESS")
        if self.address:
            check_reachable(self.address)

    def describe(self):
        """One line saying where runs train."""
        return f"ray ({self.address or 'a local Ray instance'})"

    def start(self):
        """Nothing to start ahead: the cluster's workers are running (`map` connects to them)."""

    def close(self):
        """Nothing to stop: `map` disconnects from the cluster when it ends."""

    def map(self, configs, work_root, resume):
        """Yield a `RunOutcome` per config as tasks finish (`work_root` and `resume` stay on the driver)."""
        import ray
        import ray.util.scheduling_strategies

        ray.init(address=self.address, logging_level="ERROR", log_to_driver=False,
                 include_dashboard=False if not self.address else None, configure_logging=False)
        try:
            # The counter lives on the driver's node: a worker node that dies must not take it along.
            here = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                ray.get_runtime_context().get_node_id(), soft=False)
            attempts = ray.remote(num_cpus=0)(_AttemptCounter).options(scheduling_strategy=here).remote()
            task = ray.remote(num_cpus=1, max_retries=RAY_NODE_RETRIES, retry_exceptions=False,
                              runtime_env={"env_vars": {"KERAS_BACKEND": self.backend}})(_ray_task)
            configs = list(configs)
            shipments = _shipments(ray, configs)  # packed and put in the object store once
            pending = [task.remote(config, attempts, shipments) for config in configs]
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield ray.get(done[0])
        finally:
            ray.shutdown()


def make_executor(executor="local", *, workers=None, address=None, backend=None):
    """An executor by name: `"local"` (with `workers`) or `"ray"` (with `address`), training on `backend`.

    Example:

    >>> make_executor("local", workers=1).describe()
    'local (1 worker)'
    """
    _checks.one_of(executor, EXECUTORS, "executor")
    if executor == "ray":
        if workers is not None:
            raise ValueError("`workers` applies to the local executor; a Ray cluster runs one task per CPU.")
        return RayExecutor(address, backend)
    if address is not None:
        raise ValueError("`address` applies to the ray executor. Pass executor='ray' with it.")
    return LocalExecutor(workers, backend)
