"""One writer per run directory, study folder or dataset: a `filelock` lock, with its holder named beside it.

`Lock(path, what)` takes the `filelock.FileLock` at `path` and writes who
took it (pid, host, start time) to `<path>.holder` with `write_atomic`, so a
second writer can name the holder. The operating system releases the lock
when its process dies, so a lock left by a killed process is simply taken
over by the next writer (the stale holder file is rewritten). A released
lock removes both files, so a finished run leaves no trace.

`Lock(path, what)` fails at once (`LockedError`) when the lock is held;
`Lock(path, what, wait=True)` waits for the holder instead (dataset preparation: the next process reads
what the first one prepared).
"""

import datetime
import json
import os
import pathlib
import socket

import filelock

from kerasreg._files import write_atomic


class LockedError(RuntimeError):
    """Another process is writing the same run directory or study folder."""


def holder_path(path):
    """The file beside the lock `path` that names its holder.

    Example:

    >>> holder_path("runs/.work/run.lock").name
    'run.lock.holder'
    """
    path = pathlib.Path(path)
    return path.with_name(path.name + ".holder")


def _holder(path):
    try:
        info = json.loads(holder_path(path).read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (it is starting)"


class Lock:
    """An exclusive lock on `path`; use as a context manager.

    Args:
        path: str or path. The lock file, created if missing (its folder too).
        what: str. What is locked, for the error message.
        wait: bool. Wait for a holder to finish instead of raising.
            Defaults to `False`.

    Raises:
        LockedError: another live process holds the lock (and `wait` is
            false); the message names it.

    Example:

    >>> with Lock("/tmp/kerasreg_doc.lock", "run doc"):
    ...     pass
    """

    def __init__(self, path, what, *, wait=False):
        self.path = pathlib.Path(path)
        self.what = what
        self.wait = wait
        self._lock = None

    def acquire(self):
        """Take the lock, or raise `LockedError` naming the holder (without `wait`)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(self.path, timeout=-1 if self.wait else 0, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise LockedError(
                f"{self.what} is being written by {_holder(self.path)} (lock {self.path}). "
                "Wait for it to finish, or use another --name/--out."
            ) from None
        self._lock = lock
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        write_atomic(holder_path(self.path), json.dumps(info))
        return self

    def release(self):
        """Remove the holder file and the lock file, then release the lock."""
        if self._lock is None:
            return
        # Removed while still held: filelock retries when the file it locked was unlinked meanwhile.
        holder_path(self.path).unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)
        self._lock.release()
        self._lock = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
