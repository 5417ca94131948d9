"""The one atomic file write: a kill or a full disk at any moment leaves the old content or the new, never a mix.

`write_atomic(path, data)` writes `data` to a temporary sibling
(`.<name>.tmp-<pid>`), fsyncs it, renames it over `path` and fsyncs the
folder, so the rename itself survives a power cut. Every file kerasreg
writes in place (run directory, checkpoint, manifest, report) goes through
it; a folder written as a whole is built in a temporary sibling folder and
put in place by `replace_dir` (an export, whose replacement must never lose
the old one, renames it itself; `fsync_dir` then makes the rename durable).
"""

import os
import pathlib
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


def write_atomic(path, data, *, step=None):
    """Replace the file `path` by `data` atomically: temporary sibling, fsync, rename, fsync of the folder.

    Args:
        path: str or path. The file to write; its folder must exist.
        data: str or bytes. The whole new content (str is written as UTF-8).
        step: callable or None. Called with the name of each step of the
            write ("begin", "partial", "written", "synced", "replaced"), so
            tests can kill the writer at every one of them. Defaults to `None`.

    Example:

    >>> write_atomic("/tmp/kerasreg_doc.txt", "done\\n")
    """
    step = step or (lambda name: None)
    path = pathlib.Path(path)
    data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    step("begin")
    try:
        with open(tmp, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            step("partial")
            f.write(data[len(data) // 2:])
            f.flush()
            step("written")
            os.fsync(f.fileno())
        step("synced")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    step("replaced")
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
