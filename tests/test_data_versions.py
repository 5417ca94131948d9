"""Replacing an imported dataset while other processes read it: each reader sees the old version or the new, whole."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow_datasets as tfds

import kerasreg
from helpers import data_dir_entries, run_python
from kerasreg import cli

# Loads dataset `swap` until told to stop, printing what each load held: its examples and their distinct values.
# Every load reads the files, as a fresh process would (without its 4 s of imports), and a slow disk reads each
# split's records 50 ms after the metadata before them, so imports land mid-read.
READER = """
import pathlib, sys, time
import numpy as np
import tensorflow_datasets as tfds
import kerasreg
from kerasreg.data.loading import forget_loaded
as_dataset = tfds.core.DatasetBuilder.as_dataset
def slow_as_dataset(*args, **kwargs):
    time.sleep(0.05)
    return as_dataset(*args, **kwargs)
tfds.core.DatasetBuilder.as_dataset = slow_as_dataset
data_dir, stop = sys.argv[1], pathlib.Path(sys.argv[2])
while not stop.exists():
    forget_loaded("swap", data_dir)
    data = kerasreg.load_dataset("swap", data_dir=data_dir)
    values = np.unique(np.concatenate([data.x_train, data.x_val, data.x_test]))
    print(sum(data.sizes.values()), *values.tolist(), flush=True)
"""
# `kerasreg data import` that SIGKILLs itself once the new version is complete, just before it replaces the link.
KILLED_BEFORE_THE_SWAP = """
import os, signal, sys
from kerasreg import cli
real = os.replace
def replace(src, dst, *args, **kwargs):
    if os.path.islink(src):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *args, **kwargs)
os.replace = replace
sys.exit(cli.main(["data", "import", "swap", *sys.argv[1:], "--overwrite"]))
"""


def rows(value):
    return 2000 * value


def source(tmp_path, value):
    """An .npz whose every feature is `value`, with `rows(value)` examples: each version is told by either."""
    path = tmp_path / f"v{value}.npz"
    np.savez(path, x=np.full((rows(value), 32), value, np.float32), y=np.arange(rows(value)) % 3)
    return path


def test_a_reader_looping_during_overwrites_sees_the_old_dataset_or_the_new_whole(tmp_path, capsys):
    data_dir = tmp_path / "data"
    assert cli.main(["data", "import", "swap", str(source(tmp_path, 1)), "--data-dir", str(data_dir)]) == 0
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(data_dir), str(stop)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    loads = []

    def read_until(value):
        """Collect the reader's loads until one holds version `value` (it cannot then have stopped or failed)."""
        deadline = time.monotonic() + 60
        for line in reader.stdout:
            loads.append([float(field) for field in line.split()])
            if loads[-1][1:] == [value]:
                return
            assert time.monotonic() < deadline, f"no load of version {value} in 60 s: {loads[-1]}"
        raise AssertionError(f"the reader stopped: {reader.wait()}\n{reader.stderr.read()[-3000:]}")

    try:
        read_until(1)
        for value in (2, 3, 1):
            # Each import replaces the dataset while the reader is in the middle of a load.
            code = cli.main(["data", "import", "swap", str(source(tmp_path, value)), "--data-dir", str(data_dir),
                             "--overwrite"])
            assert code == 0, capsys.readouterr().err
            read_until(value)
    finally:
        stop.touch()
        reader.stdout.read()
        reader.wait(timeout=60)
    assert reader.returncode == 0, reader.stderr.read()[-3000:]
    seen = {(int(count), tuple(values)) for count, *values in loads}
    assert seen == {(rows(value), (value,)) for value in (1, 2, 3)}, seen
    # The versions read while they were replaced were removed by their last reader: only the current one is left.
    assert data_dir_entries(data_dir) == [".swap.lock", ".swap.version-*", "swap"]
    assert kerasreg.load_dataset("swap", data_dir=data_dir).sizes["test"] == rows(1) * 0.2
    # TFDS alone still reads it where it always was.
    builder = tfds.builder("swap", data_dir=data_dir)
    assert builder.info.splits["train"].num_examples == rows(1) * 0.8


def test_a_dataset_imported_before_versions_is_read_then_replaced_by_a_version(tmp_path):
    data_dir = tmp_path / "data"
    kerasreg.import_dataset("swap", source(tmp_path, 1), data_dir=tmp_path / "staging")
    # The layout without versions: the prepared dataset is a plain folder.
    os.makedirs(data_dir)
    os.rename(os.path.realpath(tmp_path / "staging" / "swap"), data_dir / "swap")
    assert sum(kerasreg.load_dataset("swap", data_dir=data_dir).sizes.values()) == rows(1)
    kerasreg.import_dataset("swap", source(tmp_path, 2), data_dir=data_dir, overwrite=True)
    assert sum(kerasreg.load_dataset("swap", data_dir=data_dir).sizes.values()) == rows(2)
    assert data_dir_entries(data_dir) == [".swap.lock", ".swap.version-*", "swap"]


def test_an_import_killed_before_the_swap_leaves_the_old_version_listed_and_the_next_import_cleans_up(
        tmp_path, capsys):
    data_dir = tmp_path / "data"
    kerasreg.import_dataset("swap", source(tmp_path, 1), data_dir=data_dir)
    killed = run_python(KILLED_BEFORE_THE_SWAP, source(tmp_path, 2), "--data-dir", data_dir, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert sum(kerasreg.load_dataset("swap", data_dir=data_dir).sizes.values()) == rows(1)
    assert cli.main(["data", "list", "--data-dir", str(data_dir)]) == 0
    assert re.search(r"^swap +imported .*v1\.npz", capsys.readouterr().out, re.MULTILINE)
    kerasreg.import_dataset("swap", source(tmp_path, 3), data_dir=data_dir, overwrite=True)
    assert sum(kerasreg.load_dataset("swap", data_dir=data_dir).sizes.values()) == rows(3)
    assert data_dir_entries(data_dir) == [".swap.lock", ".swap.version-*", "swap"]
