"""Ctrl-C and SIGTERM as one `KeyboardInterrupt`, so that the `kerasreg` command unwinds alike from either.

Unwinding, rather than dying at once, releases the locks and removes the
temporaries on the way out; the command then names the signal it got.
"""

import contextlib
import os
import signal
import sys
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds as from Ctrl-C (locks released, temporaries removed)."""


def _terminate(signum, frame):
    raise Terminated()


def _resend_swallowed_interrupts(hook):
    """`sys.unraisablehook` that sends a swallowed Ctrl-C or SIGTERM again; other unraisables go to `hook`.

    Python ignores an exception raised inside a garbage-collection callback (JAX registers one), so an
    interrupt landing there would be lost and training would go on. Sent again, it is raised where the
    program is next: from another thread a moment later, since a signal sent from here would be raised
    inside this hook and be ignored too.
    """
    def resend(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            signum = signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT
            threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()
        else:
            hook(unraisable)
    return resend


def signal_of(interrupt):
    """The name and the exit code (128 + its number) of the signal behind a `KeyboardInterrupt`.

    Example:

    >>> signal_of(Terminated()), signal_of(KeyboardInterrupt())
    (('SIGTERM', 143), ('SIGINT', 130))
    """
    return ("SIGTERM", 143) if isinstance(interrupt, Terminated) else ("SIGINT", 130)


@contextlib.contextmanager
def as_keyboard_interrupts():
    """Within it SIGTERM raises `Terminated`, and an interrupt Python swallowed is sent again.

    Signal handlers belong to the main thread: called from another (a
    notebook's or a test's thread), it changes nothing.

    Example:

    >>> with as_keyboard_interrupts():
    ...     pass
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous, previous_hook = signal.signal(signal.SIGTERM, _terminate), sys.unraisablehook
    sys.unraisablehook = _resend_swallowed_interrupts(previous_hook)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook
