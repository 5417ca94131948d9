"""The one TCP address rule and probe: `HOST:PORT` parsing and "does anything listen there?".

Used wherever kerasreg must fail in seconds rather than hang on a peer that
is not there: a Ray head node, a tuning chief, an MLflow server.
"""

import socket
import time

from kerasreg import _checks


def parse_address(address, argument, expected="HOST:PORT, e.g. 127.0.0.1:8000"):
    """`(host, port)` from `HOST:PORT`, else the Keras-worded ValueError naming `argument`.

    Example:

    >>> parse_address("127.0.0.1:8000", "chief")
    ('127.0.0.1', 8000)
    """
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _checks.invalid(argument, expected, address)
    return host, int(port)


def probe(host, port, *, timeout=3.0, wait=0.0):
    """Return once `host:port` accepts a TCP connection; raise the last `OSError` when it does not.

    Tries for `wait` seconds (once when 0), each attempt bounded by `timeout`.

    Example:

    >>> probe("127.0.0.1", 1, timeout=0.5)
    Traceback (most recent call last):
    ...
    ConnectionRefusedError: [Errno 111] Connection refused
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
