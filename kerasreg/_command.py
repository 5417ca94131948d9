"""The `kerasreg` command's process: `cli.main`, then an exit that skips the interpreter's teardown.

Once TensorFlow and JAX are loaded, tearing an interpreter down (module
teardown, the libraries' static destructors) takes about a second after the
command's work is done. `run` registers its exit handler before anything
else is imported, so every handler registered later (TensorFlow's, JAX's,
multiprocessing's, which joins and stops workers) runs first; then the
process ends with the command's exit code. `kerasreg.cli.main` called from
Python (a test, a notebook) exits as any program does.
"""

import atexit
import os
import sys

_exit_code = None


def _end_process():
    if _exit_code is None:  # main() raised: the normal exit reports it
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a reader that went away
            pass
    os._exit(_exit_code)


def run():
    """Run the `kerasreg` command (the console script and `python -m kerasreg`); returns its exit code.

    Example:

    >>> run()  # doctest: +SKIP
    0
    """
    global _exit_code
    atexit.register(_end_process)
    from kerasreg.cli import main

    _exit_code = main()
    return _exit_code
