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

_exit_code = None


def _end_process():
    if _exit_code is None:  # main() raised: the normal exit reports it
        return
    # Imported here: with it comes multiprocessing, whose own exit handler must be registered after this one.
    from kerasreg._processes import exit_without_teardown

    exit_without_teardown(_exit_code)


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
