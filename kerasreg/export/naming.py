"""Export names: the default run name and the check that an export target is free."""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Mapping
from typing import Any

import keras

from kerasreg import _checks
from kerasreg.export.layout import MANIFEST, ExportExistsError
from kerasreg.models import placements
from kerasreg.training import RunResult


def _config_of(obj):
    """The run configuration of a `RunResult`, a model's `kerasreg_config`, or a dict as is."""
    if isinstance(obj, RunResult):
        return obj.config
    if isinstance(obj, keras.Model):
        return getattr(obj, "kerasreg_config", None) or {"model": obj.name}
    return obj


def run_name(config: Mapping[str, Any] | RunResult | keras.Model) -> str:
    """The default export name of a run, e.g. `mlp-bn_act_drop-standard0.2-seed0`.

    Parts: architecture, placement, dropout kind and rate (`nodrop` when the
    placement has no dropout or the rate is 0), the norm kind and
    `torchbn` when not the defaults, and the seed when there is one.
    Characters other than letters, digits, `.`, `_` and `-` become `_`.

    Args:
        config: dict. A `RunResult.config` or a model's `kerasreg_config`;
            a `RunResult` or a `keras.Model` is accepted too.

    Returns:
        str.

    Example:

    >>> run_name({"model": "mlp", "placement": "bn_act_drop", "dropout": "standard",
    ...           "dropout_rate": 0.2, "block": ["weight", "norm", "act", "drop"], "seed": 0})
    'mlp-bn_act_drop-standard0.2-seed0'
    """
    config = _config_of(config) or {}
    parts = [str(config.get("model") or "model")]
    if config.get("placement"):
        parts.append(str(config["placement"]))
    placement = placements.recorded_placement(config)
    kind = config.get("dropout") or (placement.dropout_kind if placement else None)
    rate = config.get("dropout_rate")
    if rate is not None:
        parts.append(f"{kind or 'standard'}{rate:g}" if placements.trains_with_dropout(config) else "nodrop")
    if config.get("norm") not in (None, "batch"):
        parts.append(f"{config['norm']}norm")
    if config.get("bn_preset") not in (None, "keras"):
        parts.append(f"{config['bn_preset']}bn")
    if config.get("seed") is not None:
        parts.append(f"seed{config['seed']}")
    return re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(parts))


def _is_utf8(name):
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable command-line bytes arrive as lone surrogates
        return False
    return True


def _check_name(name):
    if not isinstance(name, str) or not name or name.startswith(".") \
            or name != os.path.basename(name) or "\\" in name or "\0" in name or not _is_utf8(name):
        raise _checks.invalid("name", "a folder name in UTF-8 without path separators that does not start "
                              "with '.'", name)


def _is_export(path):
    return (pathlib.Path(path) / MANIFEST).is_file()


def check_export_target(out: str | os.PathLike, name: str, overwrite: bool = False) -> pathlib.Path:
    """Fail fast if exporting `name` into `out` would be refused; cheap, writes nothing.

    Call it before a long training run so an existing export stops the run
    before it starts, not after.

    Args:
        out: str or path. The export directory, e.g. `"saved_models"`.
        name: str. The export name (see `run_name`).
        overwrite: bool. Whether an existing export may be replaced.
            Defaults to `False`.

    Returns:
        pathlib.Path. The export's future path, `out/name`.

    Raises:
        ExportExistsError: `out/name` exists and `overwrite` is false, or it
            exists and is not a kerasreg export (never replaced).
        ValueError: `name` is not a plain folder name.

    Example:

    >>> check_export_target("saved_models", "mlp-bn_act_drop-standard0.2-seed0")
    PosixPath('saved_models/mlp-bn_act_drop-standard0.2-seed0')
    """
    _check_name(name)
    out = pathlib.Path(out)
    if out.exists() and not out.is_dir():
        raise ExportExistsError(f"Export directory {out} exists and is not a directory.")
    target = out / name
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise ExportExistsError(
                f"Export {target} already exists. Pass overwrite=True (`--overwrite` on the "
                "command line) to replace it, or choose another name."
            )
        if not _is_export(target):
            raise ExportExistsError(
                f"{target} exists and is not a kerasreg export (no {MANIFEST}); "
                "refusing to replace it even with overwrite=True."
            )
    return target
