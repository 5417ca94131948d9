"""Per-epoch JSON Lines logs that a crash never leaves with a broken line."""

import json
import math
import os


def jsonl_file(log_path, default_name):
    """Resolve `log_path` (a directory or a `.jsonl` file) to a file path."""
    if log_path is None:
        return None
    log_path = os.fspath(log_path)
    if log_path.endswith(".jsonl"):
        return log_path
    return os.path.join(log_path, default_name)


def prepare_jsonl(path, append):
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    if not append:
        open(path, "w").close()


def append_jsonl(path, record):
    # Strict JSON has no NaN/Infinity: a diverged run writes null instead of
    # a line that `json.loads` in other languages would reject.
    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()
    }
    # Opened per epoch so a crash mid-training still leaves complete lines.
    with open(path, "a") as f:
        f.write(json.dumps(clean, allow_nan=False) + "\n")
        f.flush()
