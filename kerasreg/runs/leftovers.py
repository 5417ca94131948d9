"""What a killed writer of a run leaves behind, and how the next writer of that name cleans it up.

Called under the run's lock (`kerasreg._locks`), so no live writer of the
name is using these files.
"""

import glob
import json
import os
import pathlib
import re
import shutil
import sys

from kerasreg.export import MANIFEST
from kerasreg.training.run_dir import STATUS


def pid_alive(pid):
    """True when process `pid` exists on this host.

    Example:

    >>> pid_alive(os.getpid())
    True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def clean_leftovers(out, name, work_dir, verbose):
    """Remove what a killed writer of this run left: export siblings of dead processes, a finished work dir.

    Example:

    >>> clean_leftovers("saved_models", "mlp-ic-standard0.2-seed0",
    ...                 pathlib.Path("saved_models/.work/mlp-ic-standard0.2-seed0"), verbose=0)
    """
    pattern = re.compile(rf"\.{re.escape(name)}\.(tmp|trash)-(\d+)-[0-9a-f]+")
    for sibling in pathlib.Path(out).glob(f".{glob.escape(name)}.*-*"):
        match = pattern.fullmatch(sibling.name)
        if match and not pid_alive(int(match.group(2))):
            if match.group(1) == "trash" and not (pathlib.Path(out) / name).exists():
                continue  # the replaced export was not yet put back: keep it for the user
            shutil.rmtree(sibling, ignore_errors=True)
    status = work_dir / STATUS
    if (pathlib.Path(out) / name / MANIFEST).is_file() and status.is_file():
        try:
            finished = json.loads(status.read_text()).get("status") == "completed"
        except ValueError:
            finished = False
        if finished:  # killed after exporting, before removing its work dir
            if verbose:
                print(f"Removing {work_dir}: its run finished and was exported.", file=sys.stderr)
            shutil.rmtree(work_dir)


def remove_dead_temporaries(out, verbose=0):
    """Remove every hidden `.<name>.tmp-<pid>-<hex>` export sibling in `out` whose writer process is dead.

    A study calls it on its `runs/` folder as it starts: a killed study's
    half-written exports (of any run) go, a live writer's stay.

    Example:

    >>> remove_dead_temporaries("saved_models")
    """
    pattern = re.compile(r"\..+\.tmp-(\d+)-[0-9a-f]+")
    for entry in pathlib.Path(out).glob(".*.tmp-*"):
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir() and not pid_alive(int(match.group(1))):
            if verbose:
                print(f"Removing {entry}: a half-written export of a killed process.", file=sys.stderr)
            shutil.rmtree(entry, ignore_errors=True)
