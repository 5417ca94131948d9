"""Giving an imported dataset to a machine that lacks it: a checksummed archive of its prepared folder.

A study on a cluster without a shared file system trains on nodes whose data
directory does not hold the user's imported dataset. The driver packs the
prepared folder (`data_dir/<name>/<version>/`) once into a `DatasetPackage`;
a node that lacks the dataset (or holds another import of the same name)
fetches it, checks its sha256 and unpacks it the way an import writes:
under the dataset's import lock, in a temporary sibling, published as a new
version (`kerasreg.data.versions`).
Every later task on the node finds it there and fetches nothing.
"""

import dataclasses
import hashlib
import io
import os
import tarfile

from kerasreg.data.builders import BUILTINS
from kerasreg.data.fingerprint import import_record
from kerasreg.data.importing import VERSION, import_lock, staging_folder
from kerasreg.data.loading import make_builder, resolve_data_dir
from kerasreg.data.versions import publish, reading


@dataclasses.dataclass(frozen=True)
class DatasetPackage:
    """An imported dataset's prepared folder, packed to travel.

    Args:
        name: str. The dataset name.
        source_sha256: str. Its import record's source fingerprint (what identifies it).
        sha256: str. The sha256 of `archive`, checked on arrival.
        archive: bytes. A tar of `data_dir/<name>/<version>/`.
    """

    name: str
    source_sha256: str
    sha256: str
    archive: bytes = dataclasses.field(repr=False)


def import_identity(name, data_dir=None):
    """The source sha256 of imported dataset `name` in `data_dir`, or `None` (built-in, TFDS, absent).

    Example:

    >>> import_identity("mnist1d") is None
    True
    """
    if name in BUILTINS:
        return None
    with reading(name, resolve_data_dir(data_dir)) as folder:
        return _identity(name, folder)


def _identity(name, folder):
    if not os.path.isfile(os.path.join(folder, name, VERSION, "dataset_info.json")):
        return None
    record = import_record(make_builder(name, folder).info)
    return record["sha256"] if record else None


def pack_dataset(name, data_dir=None):
    """Pack imported dataset `name` for another machine, or return `None` if it is not an imported one.

    Example:

    >>> pack_dataset("mnist1d") is None
    True
    """
    if name in BUILTINS:
        return None
    # One version gives both the identity and the archive, whatever an import replaces meanwhile.
    with reading(name, resolve_data_dir(data_dir)) as folder:
        source_sha256 = _identity(name, folder)
        if source_sha256 is None:
            return None
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(os.path.join(folder, name, VERSION), arcname=VERSION)
    archive = buffer.getvalue()
    return DatasetPackage(name, source_sha256, hashlib.sha256(archive).hexdigest(), archive)


def ensure_dataset(name, source_sha256, fetch, data_dir=None):
    """Make sure `data_dir` holds imported dataset `name` with this source sha256, fetching it if not.

    Safe to call from many processes of one machine at once: one fetches and
    unpacks (holding the dataset's import lock), the others then find it.

    Args:
        name: str. The dataset name.
        source_sha256: str. The import's source fingerprint it must have.
        fetch: callable. Returns the `DatasetPackage`; called only when needed.
        data_dir: str or path-like or None. This machine's data directory.
            Defaults to `None`, meaning `default_data_dir()`.

    Returns:
        bool: whether the dataset was received (`False`: it was already here).

    Raises:
        ValueError: the package's sha256 does not match (damaged in transfer).

    Example:

    >>> ensure_dataset("my_data", package.source_sha256, lambda: package)  # doctest: +SKIP
    True
    """
    data_dir = resolve_data_dir(data_dir)
    if import_identity(name, data_dir) == source_sha256:
        return False
    os.makedirs(data_dir, exist_ok=True)
    with import_lock(name, data_dir, wait=True):
        if import_identity(name, data_dir) == source_sha256:  # another process received it meanwhile
            return False
        package = fetch()
        if hashlib.sha256(package.archive).hexdigest() != package.sha256:
            raise ValueError(
                f"Dataset {name!r} arrived damaged: its archive's sha256 is not the {package.sha256[:16]}... "
                "the driver sent. Nothing was written; run again."
            )
        with staging_folder(name, data_dir) as staging:
            with tarfile.open(fileobj=io.BytesIO(package.archive)) as tar:
                tar.extractall(os.path.join(staging, name), filter="data")
            publish(os.path.join(staging, name), name, data_dir)
    return True
