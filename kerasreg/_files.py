"""The one atomic file write: a kill or a full disk at any moment leaves the old content or the new, never a mix.

`write_atomic(path, data)` writes `data` to a temporary sibling
(`.<name>.tmp-<pid>`), fsyncs it, renames it over `path` and fsyncs the
folder, so the rename itself survives a power cut. Every file kerasreg
writes in place (run directory, checkpoint, manifest, report) goes through
it; a folder written as a whole is built in a temporary sibling folder and
put in place by `replace_dir` (an export, whose replacement must never lose
the old one, renames it itself; `fsync_dir` then makes the rename durable).
"""

import contextlib
import errno
import os
import pathlib
import re
import shutil


def fsync_dir(path):
    """Flush a folder's entries (a rename or a new file in it) to disk.

    Does nothing where folders cannot be opened (Windows).

    Example:

    >>> fsync_dir("/tmp")
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except (PermissionError, IsADirectoryError):  # Windows cannot open a folder
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# What to do, by errno; the rest get the generic advice.
_ADVICE = {
    errno.EFBIG: "the file-size limit was reached: raise it (ulimit -f) or write elsewhere",
    errno.ENOSPC: "the disk is full: free space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free space or write elsewhere",
    errno.EACCES: "no permission: fix the permissions or write elsewhere",
    errno.EPERM: "no permission: fix the permissions or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.ENOTDIR: "a part of the path is a file, not a folder: move it or choose another path",
    errno.EEXIST: "something else is in the way: move it or choose another path",
    errno.ENOENT: "it does not exist: check the path",
    errno.EIO: "the disk reported an error: check it, then run again",
}
# TensorFlow's C++ writers report the operating system's reason as text only.
_TEXT_ERRNOS = {"File too large": errno.EFBIG, "No space left": errno.ENOSPC, "Disk quota": errno.EDQUOT,
                "Permission denied": errno.EACCES, "Read-only file system": errno.EROFS}


def os_error_from_text(message, path):
    """An `OSError` for `path` when a library's error `message` carries an operating-system reason, else None.

    Example:

    >>> os_error_from_text("could not write: File too large", "out/x").errno == errno.EFBIG
    True
    """
    for text, code in _TEXT_ERRNOS.items():
        if re.search(text, str(message)):
            return OSError(code, os.strerror(code), os.fspath(path))
    return None


@contextlib.contextmanager
def naming(path):
    """Give an `OSError` raised inside the block that names no file the name `path`.

    Example:

    >>> with naming("/tmp/kerasreg_doc.txt"):
    ...     pass
    """
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc


def describe(exc):
    """One line for an `OSError`: the file, the reason and what to do.

    Example:

    >>> describe(OSError(errno.EFBIG, "File too large", "run/backup/checkpoint-a.bin"))
    'cannot write run/backup/checkpoint-a.bin: File too large; the file-size limit was reached: raise it (ulimit -f) or write elsewhere.'
    """
    if exc.filename is None or exc.errno is None:
        return str(exc)
    where = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
    advice = _ADVICE.get(exc.errno, "check the path and the disk, then run again")
    verb = "read" if exc.errno == errno.ENOENT else "write"
    return f"cannot {verb} {where}: {exc.strerror}; {advice}."


def write_atomic(path, data):
    """Replace the file `path` by `data` atomically: temporary sibling, fsync, rename, fsync of the folder.

    Args:
        path: str or path. The file to write; its folder must exist.
        data: str or bytes. The whole new content (str is written as UTF-8).

    Example:

    >>> write_atomic("/tmp/kerasreg_doc.txt", "done\\n")
    """
    path = pathlib.Path(path)
    data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with naming(path), open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def replace_dir(built, target):
    """Rename the folder `built` onto `target`; an earlier `target` is moved aside first, then removed.

    Example:

    >>> replace_dir("/data/.my_data.importing-12/my_data", "/data/my_data")  # doctest: +SKIP
    """
    target = pathlib.Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
        os.replace(target, old)
    os.replace(built, target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
