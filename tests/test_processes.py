"""Work in another process: errors keep their types, a dead worker is named and replaced, workers die with us."""

import os
import signal
import subprocess
import sys
import time

import pytest

from kerasreg import _checks, _processes
from kerasreg.export import ExportExistsError

BACKEND = os.environ.get("KERAS_BACKEND", "jax")


def test_an_error_in_the_worker_is_raised_here_with_its_type_and_message():
    with pytest.raises(ValueError, match=r"Invalid value received for argument `epochs`.*Received: epochs=-1"):
        _processes.call_on(BACKEND, _checks.positive_int, -1, "epochs")
    with pytest.raises(ExportExistsError, match="taken"):
        _processes.call_on(BACKEND, _raise_export_exists, "taken")
    assert _processes.call_on(BACKEND, abs, -3) == 3  # the same worker answers on


def _raise_export_exists(message):
    raise ExportExistsError(message)


def test_a_killed_worker_gives_a_clear_error_and_the_next_call_gets_a_new_one():
    first = _processes.call_on(BACKEND, os.getpid)
    with pytest.raises(_processes.WorkerDied, match=f"The {BACKEND} worker process exited with code 3 before "
                                                    "answering '_exit' \\(its error, if any, is on stderr above"):
        _processes.call_on(BACKEND, os._exit, 3)
    second = _processes.call_on(BACKEND, os.getpid)
    assert second not in (first, os.getpid())


def _kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_by_a_signal_is_named_so_without_pointing_at_stderr():
    with pytest.raises(_processes.WorkerDied) as excinfo:
        _processes.call_on(BACKEND, _kill_self)
    message = str(excinfo.value)
    assert f"The {BACKEND} worker process was killed by SIGKILL before answering '_kill_self'" in message
    assert "stderr" not in message


def test_pool_workers_import_keras_on_the_backend_asked_for():
    with _processes.Pool(1, backend="tensorflow") as pool:
        assert pool.submit(os.getenv, "KERAS_BACKEND").result() == "tensorflow"
    assert os.environ.get("KERAS_BACKEND") == BACKEND  # this process's environment is as it was


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_worker_dies_with_the_process_that_started_it():
    parent = subprocess.Popen(
        [sys.executable, "-c", "import os, time\nfrom kerasreg import _processes\n"
         f"print(_processes.call_on({BACKEND!r}, os.getpid), flush=True)\ntime.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie awaiting its reaper is dead too
        return f.read().split(") ")[1][0] != "Z"


def test_a_script_without_a_main_guard_runs_once(tmp_path):
    # Spawned workers import the parent's script by path unless it is hidden from them; an unguarded
    # script (the README's quickstart) would then run again in every worker.
    script = tmp_path / "script.py"
    script.write_text("import os\nfrom kerasreg import _processes\n"
                      f"print('ran', flush=True)\nprint(_processes.call_on({BACKEND!r}, abs, -3))\n"
                      "assert __file__ and os.path.basename(__file__) == 'script.py'\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ran", "3"]


def test_a_worker_that_used_call_on_exits_when_its_pool_shuts_down():
    # A JAX run in a worker exports through a TensorFlow `call_on` worker of its own; that grandchild must not
    # keep the worker from exiting (multiprocessing joins children before the pools would stop them).
    code = ("import functools\nfrom kerasreg import _processes\nif __name__ == '__main__':\n"
            "    with _processes.Pool(1) as pool:\n"
            f"        print(pool.submit(functools.partial(_processes.call_on, {BACKEND!r}, abs, -2)).result())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2"]
