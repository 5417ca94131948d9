"""Keep TensorFlow's C++ start-up lines off the `kerasreg` command's terminal.

Importing TensorFlow 2.21 writes lines such as "WARNING: All log messages
before absl::InitializeLog() is called are written to STDERR", the oneDNN
notice and the CUDA probe straight to file descriptor 2, from C++. The
`kerasreg` command (unless `--debug` is given) runs inside
`filtered_stderr()`: descriptor 2 goes through a pipe, and every line that is
not such a C++ log line is passed on to the terminal as it arrives. The
processes the command starts inherit the same descriptor, so their start-up
lines are dropped too. Only the command does this: `import kerasreg` leaves
a user's program and its TensorFlow messages alone.
"""

import contextlib
import os
import re
import sys
import threading

# absl's C++ log format ("I0000 00:00:1795672171.626999   12892 port.cc:153] ...") and
# the two plain lines TensorFlow prints with it at start-up.
NOISE = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:[\d.]+\s+\d+ \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)


def _forward(source, target, noise):
    """Copy `source` to `target` line by line, dropping `noise`; a progress line (with `\\r`) goes at once."""
    pending = b""
    while True:
        chunk = os.read(source, 65536)
        if not chunk:
            break
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        kept = [line + b"\n" for line in lines if not noise.match(line.decode(errors="replace"))]
        if b"\r" in pending:
            kept.append(pending)
            pending = b""
        if kept:
            os.write(target, b"".join(kept))
    if pending and not noise.match(pending.decode(errors="replace")):
        os.write(target, pending)
    os.close(source)


@contextlib.contextmanager
def filtered_stderr(noise=NOISE):
    """Pass file descriptor 2 through a filter that drops the lines matching `noise`, live.

    Example:

    >>> with filtered_stderr():
    ...     import tensorflow  # doctest: +SKIP
    """
    if os.name == "posix":
        # multiprocessing's resource tracker lives as long as this process: started with the pipe as its stderr,
        # it would keep the pipe open and the filter would wait for it at the end.
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    forwarder = threading.Thread(target=_forward, args=(read_end, saved, noise), daemon=True)
    forwarder.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        restored = os.dup(saved)
        os.dup2(restored, 2)  # closes this process's copy of the pipe's write end
        os.close(restored)
        # Worker processes still alive hold the pipe too: wait for what is written, not for them.
        forwarder.join(timeout=0.5)
        if not forwarder.is_alive():
            os.close(saved)
