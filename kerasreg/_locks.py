"""One writer per run directory, study folder or dataset: a `filelock` lock, with its holder named beside it.

`Lock(path, what)` takes the `filelock.FileLock` at `path` and writes who
took it (pid, host, start time) to `<path>.holder` with `write_atomic`, so a
second writer can name the holder. The operating system releases the lock
when its process dies, so a lock left by a killed process is simply taken
over by the next writer (the stale holder file is rewritten). A released
lock removes both files, so a finished run leaves no trace.

A thread that already holds a lock takes it again as a no-op (the `kerasreg
study` command locks its folder before its imports, then `run_study` locks it
as any caller's would). Folders the lock created are removed with it when
they are left empty.

`Lock(path, what)` fails at once (`LockedError`) when the lock is held;
`Lock(path, what, wait=True)` waits for the holder instead (dataset preparation: the next process reads
what the first one prepared).

`Flock(path, shared=True)` is the other kind: a lock many readers share and one writer takes alone (an
imported dataset's versions, `kerasreg.data.versions`). It is an `fcntl.flock` on a file that stays, since
removing a file others may be waiting on would let two holders in; filelock's own `ReadWriteLock` is an SQLite
database per lock.
"""

import datetime
import errno
import json
import os
import pathlib
import socket
import threading

import filelock

from kerasreg._files import write_atomic


# Locks held by this process, per (resolved path, thread): how many times taken.
_HELD = {}


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
        advice: str. What to do instead, for the error message. Defaults to
            `"Wait for it to finish."`.

    Raises:
        LockedError: another live process holds the lock (and `wait` is
            false); the message names it.

    Example:

    >>> with Lock("/tmp/kerasreg_doc.lock", "run doc"):
    ...     pass
    """

    def __init__(self, path, what, *, wait=False, advice="Wait for it to finish."):
        self.path = pathlib.Path(path)
        self.what = what
        self.wait = wait
        self.advice = advice
        self._lock = None
        self._key = None
        self._created = []

    def acquire(self):
        """Take the lock, or raise `LockedError` naming the holder (without `wait`)."""
        key = (str(self.path.absolute()), threading.get_ident())
        if key in _HELD:
            _HELD[key] += 1
            self._key = key
            return self
        self._created = [p for p in (self.path.parent, *self.path.parent.parents) if not p.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(self.path, timeout=-1 if self.wait else 0, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            self._remove_created()
            raise LockedError(
                f"{self.what} is being written by {_holder(self.path)} (lock {self.path}). {self.advice}"
            ) from None
        self._lock, self._key = lock, key
        _HELD[key] = 1
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        write_atomic(holder_path(self.path), json.dumps(info))
        return self

    def release(self):
        """Remove the holder file and the lock file, then release the lock (and the folders it created, if empty)."""
        if self._key is None:
            return
        _HELD[self._key] -= 1
        key, self._key = self._key, None
        if _HELD[key]:
            return
        del _HELD[key]
        # Removed while still held: filelock retries when the file it locked was unlinked meanwhile.
        holder_path(self.path).unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)
        self._lock.release()
        self._lock = None
        self._remove_created()

    def _remove_created(self):
        for folder in self._created:  # deepest first; only empty ones go
            try:
                folder.rmdir()
            except OSError:
                break
        self._created = []

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


class Flock:
    """A shared or exclusive `fcntl.flock` on the file `path` (created if missing); the operating system releases
    it when the process dies.

    Args:
        path: str or path. The lock file; its folder must exist.
        shared: bool. Shared with other shared holders (readers), else exclusive (a writer). Defaults to `False`.

    Attributes:
        held: bool. Whether the lock is held. `acquire` leaves it `False` where the file cannot be opened (a
            folder this process may not write to, which no one else's lock can then guard either).

    Example:

    >>> with Flock("/tmp/kerasreg_doc.flock", shared=True) as lock:
    ...     lock.held
    True
    """

    def __init__(self, path, *, shared=False):
        self.path = os.fspath(path)
        self.shared = shared
        self.held = False
        self._fd = None

    def acquire(self, *, wait=True):
        """Take the lock, waiting for a conflicting holder unless `wait` is false; return whether it is held."""
        import fcntl  # POSIX only: imported here, so that what needs no shared lock imports everywhere

        try:
            # Read-write where possible: NFS implements flock with byte-range locks, which need it for exclusive ones.
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except OSError:
                return False
        try:
            fcntl.flock(self._fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            self.release()
            return False
        except BaseException:
            self.release()
            raise
        self.held = True
        return True

    def release(self):
        """Release the lock (closing the file releases it); a lock not held is left alone."""
        if self._fd is not None:
            fd, self._fd, self.held = self._fd, None, False
            os.close(fd)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
