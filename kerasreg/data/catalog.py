"""Listing and describing datasets, for `kerasreg data list` and `kerasreg data info`."""

from __future__ import annotations

import dataclasses
import fnmatch
import os

import numpy as np
import tensorflow_datasets as tfds

from kerasreg.data.builders import BUILTINS
from kerasreg.data.builders import source
from kerasreg.data.fingerprint import import_record
from kerasreg.data.loading import (
    is_prepared,
    make_builder,
    not_prepared_message,
    prepared_variants,
    quiet_absl,
    resolve_data_dir,
)
from kerasreg.data.versions import reading


@dataclasses.dataclass(frozen=True)
class DatasetListing:
    """One row of `list_datasets`.

    Args:
        name: str. Name to pass to `load_dataset`.
        source: str. `"built-in"` (generated locally), `"imported"` (by
            `import_dataset`) or `"tfds"`.
        prepared: bool. Whether its files are already in `data_dir`.
        version: str or None. Prepared (or, if not prepared, to-be-prepared) version.
        path: str or None. Directory of the prepared files.
        description: str. One-line description.
    """

    name: str
    source: str
    prepared: bool
    version: str | None
    path: str | None
    description: str


def list_datasets(filter: str = "*", *, data_dir: str | os.PathLike | None = None) -> list[DatasetListing]:
    """List built-in datasets, imported datasets and TFDS datasets prepared in `data_dir`.

    Nothing is prepared or downloaded. Built-ins are always listed (they are
    generated on first load); other TFDS datasets only when prepared.

    Args:
        filter: str. fnmatch pattern on names, e.g. `"*mnist*"`. Defaults to `"*"`.
        data_dir: str or path-like or None. Where to look. Defaults to `None`,
            meaning `default_data_dir()`.

    Returns:
        A list of `DatasetListing`, sorted by name.

    Example:

    >>> [listing.name for listing in list_datasets()][:2]
    ['digits', 'mnist1d']
    """
    data_dir = resolve_data_dir(data_dir)
    listings = [_builtin_listing(name, data_dir) for name in BUILTINS]
    listings += _prepared_tfds_listings(data_dir)
    return sorted(
        (item for item in listings if fnmatch.fnmatch(item.name, filter)),
        key=lambda item: item.name,
    )


def format_dataset_list(listings, *, data_dir=None):
    """Format `list_datasets` output as the table `kerasreg data list` prints.

    Args:
        listings: list of `DatasetListing`.
        data_dir: str or path-like or None. Directory named in the footer.
            Defaults to `None`, meaning `default_data_dir()`.

    Returns:
        A multi-line str.

    Example:

    >>> print(format_dataset_list(list_datasets()))  # doctest: +ELLIPSIS
    name ...
    """
    data_dir = resolve_data_dir(data_dir)
    rows = [("name", "source", "status", "version", "description")]
    for item in listings:
        if item.prepared:
            status = "prepared"
        else:
            status = "on first use" if item.source == "built-in" else "not prepared"
        rows.append((item.name, item.source, status, item.version or "-", item.description))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4]
             for row in rows]
    lines.append(f"data_dir: {data_dir}")
    return "\n".join(line.rstrip() for line in lines)


def dataset_info(name: str, *, data_dir: str | os.PathLike | None = None) -> str:
    """Describe one dataset in readable text, without preparing or downloading it.

    Covers the source, whether and where it is prepared, features, classes,
    split sizes (when prepared), how validation is carved, homepage and
    citation; for an unprepared TFDS dataset, how to prepare it.

    Args:
        name: str. A built-in or TFDS dataset name.
        data_dir: str or path-like or None. Where to look. Defaults to `None`,
            meaning `default_data_dir()`.

    Returns:
        A multi-line str.

    Raises:
        ValueError: for an unknown name, with the closest match.

    Example:

    >>> print(dataset_info("mnist1d"))  # doctest: +ELLIPSIS
    mnist1d (built-in...
    """
    data_dir = resolve_data_dir(data_dir)
    # One version's files describe it, whatever an import replaces meanwhile.
    with reading(name, data_dir) as folder:
        builder = make_builder(name, folder)
        info = builder.info
        prepared = is_prepared(builder)
    origin = "imported" if prepared and import_record(info) else source(name)
    status = "prepared" if prepared else "not prepared"
    lines = [f"{name} ({origin}, {status}, version {builder.version})"]
    description = (info.description or "").strip().splitlines()
    lines.extend(f"  {line}".rstrip() for line in description)
    lines.append(f"  location: {os.path.join(data_dir, os.path.relpath(builder.data_dir, folder))}")
    if info.supervised_keys:
        input_key, label_key = info.supervised_keys[:2]
        feature = info.features[input_key]
        dtype = np.dtype(feature.np_dtype)
        loaded_as = " (loaded as float32 in [0, 1])" if dtype == np.uint8 else ""
        lines.append(f"  input: {input_key!r}, shape {feature.shape}, {dtype}{loaded_as}")
        label_feature = info.features[label_key]
        if isinstance(label_feature, tfds.features.ClassLabel):
            names = ", ".join(label_feature.names[:20])
            more = ", ..." if label_feature.num_classes > 20 else ""
            lines.append(
                f"  label: {label_key!r}, {label_feature.num_classes} classes ({names}{more})"
            )
    if prepared:
        sizes = ", ".join(f"{split} {info.splits[split].num_examples}" for split in sorted(info.splits))
        lines.append(f"  splits: {sizes}")
        lines.append(
            "  validation: carved from train by load_dataset(validation_split=..., seed=...)"
        )
    elif origin == "built-in":
        lines.append("  splits: generated locally on first load_dataset (a few seconds)")
    else:
        lines.append("  " + not_prepared_message(name, builder, data_dir))
    if info.homepage:
        lines.append(f"  homepage: {info.homepage}")
    if info.citation:
        lines.append("  citation:")
        lines.extend("    " + line for line in info.citation.strip().splitlines())
    return "\n".join(lines)


def _builtin_listing(name, data_dir):
    builder = make_builder(name, data_dir)
    prepared = is_prepared(builder)
    return DatasetListing(
        name=name,
        source="built-in",
        prepared=prepared,
        version=str(builder.version),
        path=builder.data_dir if prepared else None,
        description=_first_line(builder.info.description),
    )


def _prepared_tfds_listings(data_dir):
    """TFDS datasets prepared in `data_dir`, newest version of each."""
    found = {}
    for listed_name, version, root in prepared_variants(data_dir):
        previous = found.get(listed_name)
        if previous is None or tfds.core.Version(version) > tfds.core.Version(previous.version):
            origin, description = _origin_from_files(root)
            found[listed_name] = DatasetListing(
                name=listed_name,
                source=origin,
                prepared=True,
                version=version,
                path=root,
                description=description,
            )
    return list(found.values())


def _origin_from_files(variant_dir):
    """`("imported" or "tfds", first line of the description)` read from a prepared folder."""
    try:
        with quiet_absl():
            info = tfds.builder_from_directory(variant_dir).info
        return ("imported" if import_record(info) else "tfds"), _first_line(info.description)
    except Exception:  # A damaged directory must not break the whole listing.
        return "tfds", ""


def _first_line(text, limit=100):
    line = (text or "").strip().split("\n")[0].strip()
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."
