"""Distributed tuning on KerasTuner's own chief/worker mode.

KerasTuner distributes a search through three environment variables: every
process gets `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` (the
chief's address) and a `KERASTUNER_TUNER_ID` (`chief` for the chief). The
chief holds the oracle and answers over gRPC; each worker asks it for a
trial, trains it and reports the result. `role(...)` sets the three
variables for the duration of a search only, and restores them afterwards.

A worker that dies mid-trial keeps its trial: the chief hands the same
trial to the next worker that asks with the same tuner id, so restart it
with the same `tuner_id` (KerasTuner waits for every trial it handed out).
As in KerasTuner, the tune folder must be shared by the chief and the
workers (one machine, or a network file system): trials are written there
and the chief exports the best of them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time

from kerasreg import _checks
from kerasreg._network import parse_address, probe

ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
CHIEF_ID = "chief"
# A worker waits this long for the chief to accept connections and answer before giving up.
CONNECT_SECONDS = 5.0
# The least time the gRPC handshake gets when the TCP probe used up the budget (a live chief answers in milliseconds).
HANDSHAKE_SECONDS = 1.0


def wait_for_chief(address, timeout=CONNECT_SECONDS):
    """Return once the chief at `HOST:PORT` answers a gRPC handshake; raise a ValueError after about `timeout` seconds.

    A TCP connection alone is not enough: a listener that accepts and never
    speaks gRPC would leave KerasTuner's first request waiting for an hour.

    Example:

    >>> wait_for_chief("127.0.0.1:1", timeout=0.5)
    Traceback (most recent call last):
    ...
    ValueError: No tuning chief listens at 127.0.0.1:1 ...
    """
    host, port = parse_address(address, "worker")
    deadline = time.monotonic() + timeout
    try:
        probe(host, port, timeout=1.0, wait=timeout)
    except OSError as exc:
        raise ValueError(
            f"No tuning chief listens at {address} ({exc.strerror or exc}; waited {timeout:g} s). Start "
            f"the chief first (`kerasreg tune --chief {address} ...`), or check the address."
        ) from None
    _wait_for_handshake(address, max(deadline - time.monotonic(), HANDSHAKE_SECONDS))


def _wait_for_handshake(address, timeout):
    """Return once a gRPC server at `address` completes the HTTP/2 handshake; raise a ValueError after `timeout` s."""
    import grpc

    with grpc.insecure_channel(address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise ValueError(
                f"The tuning chief at {address} accepts connections but does not answer (no gRPC handshake in "
                f"{timeout:.1f} s). Check that the address is the chief's (`kerasreg tune --chief {address} ...`) "
                f"and not another service's, and that the chief is running and not stalled."
            ) from None


def check_can_listen(address):
    """Raise a ValueError at once unless this machine can listen at `HOST:PORT` (free port, local address).

    Example:

    >>> check_can_listen("127.0.0.1:8471")  # doctest: +SKIP
    """
    host, port = parse_address(address, "chief")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as listener:
            listener.bind((host, port))
    except OSError as exc:
        raise ValueError(f"The tuning chief cannot listen at {address}: {exc.strerror or exc}.") from None


def default_worker_id():
    """A tuner id for a worker: `worker-<host>-<pid>` (pass your own to let a restarted worker resume its trial).

    Example:

    >>> default_worker_id().startswith("worker-")
    True
    """
    return f"worker-{socket.gethostname()}-{os.getpid()}"


@contextlib.contextmanager
def role(chief=None, worker=None, tuner_id=None):
    """Set KerasTuner's three variables for a chief (listening at `chief`) or a worker (of the chief at `worker`).

    With neither, nothing is set: the search runs in this process alone.

    Example:

    >>> with role(worker="10.0.0.5:8000", tuner_id="worker0"):
    ...     os.environ["KERASTUNER_TUNER_ID"]
    'worker0'
    """
    if chief is not None and worker is not None:
        raise ValueError("Pass either `chief` (this process serves the search) or `worker` (it trains trials "
                         "for the chief at that address), not both.")
    if chief is None and worker is None:
        if tuner_id is not None:
            raise ValueError("`tuner_id` names a worker of a distributed search; pass `worker` with it.")
        yield
        return
    host, port = parse_address(chief or worker, "chief" if chief else "worker")
    if chief is not None and tuner_id is not None:
        raise ValueError("`tuner_id` names a worker; the chief's id is always 'chief'.")
    ident = CHIEF_ID if chief else (tuner_id or default_worker_id())
    if worker is not None and CHIEF_ID in ident:
        raise _checks.invalid("tuner_id", "a worker id not containing 'chief' (KerasTuner's mark of the chief)",
                              ident)
    saved = {name: os.environ.get(name) for name in ENV}
    os.environ.update(KERASTUNER_TUNER_ID=ident, KERASTUNER_ORACLE_IP=host, KERASTUNER_ORACLE_PORT=str(port))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def serve(oracle, address, poll=0.5):
    """Serve `oracle` to workers at `HOST:PORT` until every trial has ended and every worker has been told to stop.

    KerasTuner's own chief loop checks for the end every 20 seconds; this one
    checks every `poll` seconds, with KerasTuner's servicer and end test.

    Raises:
        ValueError: the address cannot be listened on (in use, or not this machine's).
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    host, port = parse_address(address, "chief")
    check_can_listen(address)  # grpc reports a failed bind by returning 0 or by raising, depending on its version
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    if not server.add_insecure_port(f"{host}:{port}"):
        raise ValueError(f"The tuning chief cannot listen at {address}.")
    server.start()
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll)
    finally:
        server.stop(grace=1.0)
