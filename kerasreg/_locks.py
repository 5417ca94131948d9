"""One writer per run directory or study folder: an exclusive `flock` on a lock file.

The lock file holds who took it (pid, host, start time) so a second writer
can name the holder. The kernel releases a `flock` when its process dies, so
a lock left by a killed process is simply taken over by the next writer; the
file's old contents are then rewritten. After taking the lock the file is
checked to still be the one at the path (a releasing holder unlinks it), so
two writers can never hold locks on different files of the same name.
"""

import datetime
import fcntl
import json
import os
import pathlib
import socket


class LockedError(RuntimeError):
    """Another process is writing the same run directory or study folder."""


def _holder(path):
    try:
        info = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its lock file is being written)"


class Lock:
    """An exclusive, non-blocking lock on `path`; use as a context manager.

    Args:
        path: str or path. The lock file, created if missing (its folder too).
        what: str. What is locked, for the error message.

    Raises:
        LockedError: another live process holds the lock; the message names it.

    Example:

    >>> with Lock("/tmp/kerasreg_doc.lock", "run doc"):
    ...     pass
    """

    def __init__(self, path, what):
        self.path = pathlib.Path(path)
        self.what = what
        self._fd = None

    def acquire(self):
        """Take the lock at once or raise `LockedError` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # the folder was removed by a finishing writer just now
                self.path.parent.mkdir(parents=True, exist_ok=True)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LockedError(
                    f"{self.what} is being written by {_holder(self.path)} (lock {self.path}). "
                    "Wait for it to finish, or use another --name/--out."
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the previous holder removed this file while we waited on it: retry
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        self._fd = fd
        return self

    def release(self):
        """Remove the lock file and release the lock (unlink first, so no one locks a dying file)."""
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
