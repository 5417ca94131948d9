"""Keep TensorFlow's C++ start-up lines off the terminal.

Importing TensorFlow 2.21 writes lines such as "WARNING: All log messages
before absl::InitializeLog() is called are written to STDERR", the oneDNN
notice and the CUDA probe straight to file descriptor 2, from C++, before
`TF_CPP_MIN_LOG_LEVEL` is read. `install()` puts a one-shot import hook in
front of `import tensorflow`: the import runs with descriptor 2 sent to a
temporary file, and afterwards every captured line that is not such a C++
log line is written back to stderr, so real warnings and errors still show.
The `kerasreg` command installs it unless `--debug` is given, and sets
`KERASREG_QUIET_TENSORFLOW=1` so that `import kerasreg` installs it in the
processes the command starts.
"""

import contextlib
import os
import re
import sys
import tempfile

from kerasreg import _lazy

# absl's C++ log format ("I0000 00:00:1795672171.626999   12892 port.cc:153] ...") and
# the two plain lines TensorFlow prints with it at start-up.
NOISE = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:[\d.]+\s+\d+ \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)
# Set by the `kerasreg` command so that the processes it starts (study workers,
# export processes) keep TensorFlow's start-up lines off the terminal too.
ENV = "KERASREG_QUIET_TENSORFLOW"
_HOOK = None


@contextlib.contextmanager
def filtered_stderr(noise=NOISE):
    """Capture file descriptor 2 and write back only the lines that are not `noise`.

    Example:

    >>> with filtered_stderr():
    ...     import tensorflow  # doctest: +SKIP
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines(keepends=True)
                    if not noise.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def _quietly(do_import):
    with filtered_stderr():
        do_import()


def install():
    """Filter TensorFlow's start-up lines from stderr when it is first imported in this process.

    Does nothing when TensorFlow is already imported.

    Example:

    >>> install()
    >>> import tensorflow  # doctest: +SKIP
    """
    global _HOOK
    if _HOOK not in sys.meta_path:
        _HOOK = _lazy.on_first_import("tensorflow", _quietly)

