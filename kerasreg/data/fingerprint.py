"""The sha256 of an imported source, and the check that a source is still the one imported.

A file's fingerprint is the sha256 of its bytes (as `sha256sum` prints it);
a folder's is the sha256 of one line per file, `<sha256>  <relative path>`,
in sorted path order, so renaming, adding or changing any file changes it.
"""

import hashlib
import os

_BLOCK = 1 << 20
# Key of the import record in an imported dataset's `metadata.json`.
METADATA_KEY = "kerasreg_import"


def fingerprint(path):
    """Return the sha256 (hex) of a source file or folder, read in 1 MiB blocks.

    Example:

    >>> import sys
    >>> len(fingerprint(sys.executable))
    64
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return _file_sha256(path)
    lines = []
    for folder, subfolders, files in os.walk(path):
        subfolders.sort()
        for file in sorted(files):
            full = os.path.join(folder, file)
            relative = os.path.relpath(full, path).replace(os.sep, "/")
            lines.append(f"{_file_sha256(full)}  {relative}\n")
    return hashlib.sha256("".join(sorted(lines, key=lambda line: line[66:])).encode("utf-8")).hexdigest()


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_source(name, record, source):
    """Raise a ValueError if `source` is not the one dataset `name` was imported from.

    Args:
        name: str. The dataset.
        record: dict or None. The dataset's import record (`sha256`, `source`).
        source: str or path-like. The source given again.

    Example:

    >>> check_source("iris", {"sha256": fingerprint(__file__), "source": __file__}, __file__)
    """
    if not record:
        raise ValueError(f"Dataset {name!r} was not imported from a source, so there is none to check against.")
    current = fingerprint(source)
    if current != record["sha256"]:
        raise ValueError(
            f"Source {os.fspath(source)} changed since dataset {name!r} was imported from "
            f"{record['source']}: sha256 {current[:16]}... now, {record['sha256'][:16]}... at import. "
            f"Import it again (`kerasreg data import {name} {os.fspath(source)} --overwrite`) or use the "
            "original file."
        )


def import_record(info):
    """The import record (`source`, `kind`, `sha256`, ...) in a dataset's metadata, or `None` if not imported.

    Example:

    >>> import_record(load_dataset("mnist1d").info) is None  # doctest: +SKIP
    True
    """
    metadata = info.metadata
    return dict(metadata[METADATA_KEY]) if metadata and METADATA_KEY in metadata else None
