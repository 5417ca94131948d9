"""Replacing an imported dataset while other processes read it: every import is a new version folder.

`data_dir/<name>` is a symbolic link to `.<name>.version-<id>/<name>`, which holds the prepared TFDS
dataset (`1.0.0/`), so `tfds.builder(name, data_dir=...)` finds it where it always was. An import builds
the new version beside the current one, then renames a new link over the old one: a single atomic step,
before which every reader resolving the link finds the old version and after which the new one.

A reader (`reading`) resolves the link once and reads only from the version it names (that version's
folder is TFDS's data directory for the read), holding a shared lock on the version's `readers.lock`
until it is done. `load_dataset` reads the whole dataset into memory, so a version is held while it is
read, not while a model trains on it. The import removes every earlier version no reader holds; the last
reader of a version that was replaced meanwhile removes it.

`data_dir/.<name>.lock` keeps resolving and replacing apart: a reader holds it shared while it resolves
the link and locks the version, an import holds it exclusively while it replaces the link and picks the
versions to remove. A dataset that is a plain folder (written by TFDS, or imported before versions
existed) is read holding `.<name>.lock` throughout; the first import over it waits for those readers,
then moves the folder aside and removes it.
"""

import contextlib
import os
import re
import shutil
import time

from kerasreg._files import fsync_dir
from kerasreg._locks import Flock
from kerasreg.data.builders import BUILTINS

# Beside the dataset in each version folder: shared by its readers, taken exclusively to remove the version.
_READERS = "readers.lock"


def folder_name(name):
    """The folder in the data directory of dataset `name` (`name/config:version` is read from `name/`).

    Example:

    >>> folder_name("mnist:3.0.1")
    'mnist'
    """
    return re.split(r"[/:]", name)[0]


def current_folder(name, data_dir):
    """The data directory to read dataset `name` from: its current version's folder, else `data_dir`.

    `data_dir` itself for a dataset that is not versioned (a built-in, a TFDS dataset, one imported
    before versions existed) or not there.

    Example:

    >>> current_folder("mnist1d", "/tmp/kerasreg_doc_data")
    '/tmp/kerasreg_doc_data'
    """
    name = folder_name(name)
    try:
        target = os.readlink(os.path.join(data_dir, name))
    except OSError:  # not a link
        return data_dir
    # A link of the user's own (to another disk, say) is read through, as TFDS reads it.
    version = re.fullmatch(rf"(\.{re.escape(name)}\.version-[0-9a-f]+)/{re.escape(name)}", target)
    return os.path.join(data_dir, version[1]) if version else data_dir


@contextlib.contextmanager
def reading(name, data_dir):
    """Hold dataset `name`'s current version while the block reads it; yields the data directory to read it from.

    An import may replace the dataset meanwhile: the version yielded stays whole until the block ends.

    Example:

    >>> with reading("my_data", "/tmp/kerasreg_doc_data") as folder:
    ...     builder = tfds.builder("my_data", data_dir=folder)  # doctest: +SKIP
    """
    name = folder_name(name)
    # Nothing to hold: TFDS says what is missing, and built-ins are prepared in place under a lock of their own.
    if name in BUILTINS or not os.path.lexists(os.path.join(data_dir, name)):
        yield data_dir
        return
    with Flock(_resolving_lock(name, data_dir), shared=True) as resolving:
        folder = current_folder(name, data_dir)
        # A plain folder is held under the resolving lock throughout (and a link to a removed version is absent).
        if folder == data_dir or not os.path.isdir(folder):
            yield data_dir
            return
        version = Flock(os.path.join(folder, _READERS), shared=True)
        version.acquire()
        resolving.release()  # imports may replace the link from here on; this version stays
    try:
        yield folder
    finally:
        version.release()
        if current_folder(name, data_dir) != folder:  # replaced while read: the last reader removes it
            with _unheld(folder) as removable:
                if removable:
                    shutil.rmtree(folder, ignore_errors=True)


def publish(built, name, data_dir):
    """Make the folder `built` (prepared dataset `name`) the current version of `name` in `data_dir`.

    The caller holds the dataset's import lock. Earlier versions that no reader holds are removed.

    Example:

    >>> publish("/data/.my_data.importing-12/my_data", "my_data", "/data")  # doctest: +SKIP
    """
    version = os.path.join(data_dir, f".{name}.version-{time.time_ns():x}")
    os.mkdir(version)
    os.replace(built, os.path.join(version, name))
    open(os.path.join(version, _READERS), "wb").close()
    fsync_dir(version)
    link = os.path.join(data_dir, f".{name}.link-{os.getpid()}")
    os.symlink(os.path.join(os.path.basename(version), name), link)
    target = os.path.join(data_dir, name)
    with contextlib.ExitStack() as removals:
        with Flock(_resolving_lock(name, data_dir)):
            if os.path.isdir(target) and not os.path.islink(target):  # a plain folder: its readers are done
                aside = os.path.join(data_dir, f".{name}.replaced-{os.getpid()}")
                os.replace(target, aside)
                removals.callback(shutil.rmtree, aside, ignore_errors=True)
            os.replace(link, target)
            fsync_dir(data_dir)
            for old in _versions(name, data_dir):
                if old != version and removals.enter_context(_unheld(old)):
                    # Registered after its lock: removed first, then the lock released.
                    removals.callback(shutil.rmtree, old, ignore_errors=True)


def leftovers(name):
    """Prefixes of what an import of `name` killed mid-way leaves in the data directory (hidden, never listed).

    Example:

    >>> leftovers("my_data")
    ('.my_data.importing-', '.my_data.replaced-', '.my_data.link-')
    """
    return f".{name}.importing-", f".{name}.replaced-", f".{name}.link-"


@contextlib.contextmanager
def _unheld(folder):
    """Yield whether version `folder` has no reader: then it is locked exclusively until the block ends."""
    lock = Flock(os.path.join(folder, _READERS))
    try:
        taken = lock.acquire(wait=False)
    except FileNotFoundError:  # removed meanwhile by another process
        taken = False
    try:
        yield taken
    finally:
        lock.release()


def _versions(name, data_dir):
    prefix = f".{name}.version-"
    return [os.path.join(data_dir, entry) for entry in os.listdir(data_dir) if entry.startswith(prefix)]


def _resolving_lock(name, data_dir):
    return os.path.join(data_dir, f".{name}.lock")
