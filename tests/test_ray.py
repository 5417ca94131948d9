"""The ray executor against a real two-node Ray cluster on 127.0.0.1 that these tests start and stop.

The cluster (a head and one worker node, one CPU each) is started with
`ray start --block` in sessions of its own, so the tests stop exactly the
processes they started (never `ray stop`, which would stop every Ray on the
machine) and can SIGKILL the worker node's whole process group.
"""

import json
import os
import pathlib
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from helpers import with_default_sigint

import kerasreg

ray = pytest.importorskip("ray", reason="the ray executor needs Ray: pip install \"kerasreg[ray]\"")

REPO = pathlib.Path(__file__).resolve().parents[1]
RAY = str(pathlib.Path(sys.executable).with_name("ray"))
GRID = dict(placements=["none", "dropout"], seeds=[0, 1], epochs=2, models=["mlp"])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_node(args, log):
    # The nodes' workers import this checkout's kerasreg, like the driver.
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(REPO))
    return subprocess.Popen([RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                             "--disable-usage-stats", *args], env=env, start_new_session=True,
                            stdout=log, stderr=subprocess.STDOUT)


def _alive_nodes(address):
    # Some Ray releases echo raylet log lines on stdout, so the count is read from its own marked line.
    code = ("import ray; ray.init(address=%r, logging_level='ERROR', log_to_driver=False);"
            "print('alive nodes:', sum(n['Alive'] for n in ray.nodes()))" % address)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    counts = re.findall(r"^alive nodes: (\d+)$", done.stdout, flags=re.M) if done.returncode == 0 else []
    return int(counts[-1]) if counts else 0


_PROBE = """
import sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
for question in sys.stdin:
    if question.strip() == "nodes":
        answer = sum(node["Alive"] for node in ray.nodes())
    else:
        answer = ray.available_resources().get("CPU", 0)
    print("answer:", answer, flush=True)
"""


class _Probe:
    """One process connected to the cluster as a driver, answering how many nodes are alive and how many CPUs idle.

    Asking a fresh process each time imports Ray and connects again: seconds of CPU per question, taken from the
    nodes under test.
    """

    def __init__(self, address):
        self.process = subprocess.Popen([sys.executable, "-c", _PROBE, address], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        start_new_session=True)
        self.answers = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        # Some Ray releases echo raylet log lines on stdout: answers are the marked lines.
        for line in self.process.stdout:
            if line.startswith("answer: "):
                self.answers.put(float(line.split()[1]))
        self.answers.put(None)

    def ask(self, question):
        self.process.stdin.write(question + "\n")
        self.process.stdin.flush()
        answer = self.answers.get(timeout=120)
        assert answer is not None, "the cluster probe ended"
        return answer

    def alive_nodes(self):
        return int(self.ask("nodes"))

    def idle_cpus(self):
        return self.ask("cpus")


def _stop(process):
    # The whole session is the test's: SIGKILL ends every process of it at once, where `ray start --block` takes
    # about 30 s to stop a node gracefully on SIGTERM.
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and a worker node on 127.0.0.1; yields (address, start_worker)."""
    logs = tmp_path_factory.mktemp("ray-logs")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    head = _start_node(["--head", f"--port={port}", "--include-dashboard=false",
                        f"--ray-client-server-port={_free_port()}"], open(logs / "head.log", "w"))
    workers = []
    probes = []

    def wait_for_nodes(count):
        deadline = time.monotonic() + 120
        while (probes[0].alive_nodes() if probes else _alive_nodes(address)) < count:
            assert time.monotonic() < deadline, (logs / "head.log").read_text()[-2000:]
            time.sleep(0.5 if probes else 1)

    def start_worker():
        workers.append(_start_node([f"--address={address}"], open(logs / f"worker{len(workers)}.log", "w")))
        wait_for_nodes(2)
        return workers[-1]

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.monotonic() < deadline, (logs / "head.log").read_text()
                time.sleep(0.5)
        # The head's GCS listens before its raylet is up. Nodes on one machine share the session's socket folder,
        # and a worker node started in that gap takes the head's plasma socket: the head's raylet aborts (Ray 2.6:
        # "bind: Address already in use").
        wait_for_nodes(1)
        probes.append(_Probe(address))  # the head's raylet is up: a driver can attach to it
        start_worker()
        yield address, start_worker, workers, probes[0]
    finally:
        for process in [*workers, *(probe.process for probe in probes), head]:
            _stop(process)


def _metrics(out):
    """Per-run final metrics from the study's exports."""
    metrics = {}
    for manifest in sorted((out / "runs").glob("*/manifest.json")):
        values = json.loads(manifest.read_text())["metrics"]
        metrics[manifest.parent.name] = {k: values[k] for k in
                                         ("test_accuracy", "test_loss", "val_accuracy", "clean_gap_accuracy")}
    return metrics


@pytest.fixture(scope="module")
def local_metrics(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "study"
    kerasreg.run_study(kerasreg.StudyConfig(**GRID), out, workers=1, verbose=0)
    return _metrics(out)


def test_a_study_on_the_cluster_gives_the_local_executors_metrics(cluster, local_metrics, tmp_path):
    address, _, _, _ = cluster
    out = tmp_path / "study"
    report = kerasreg.run_study(kerasreg.StudyConfig(**GRID), out, executor="ray", address=address, verbose=0)
    assert not report.failures
    assert _metrics(out) == local_metrics
    assert len(local_metrics) == 4
    text = (out / "report.md").read_text()
    assert f"Trained on ray ({address})" in text and "0 runs retried" in text
    assert not (out / "runs" / ".work").exists() or not any((out / "runs" / ".work").iterdir())


def test_killing_the_worker_node_mid_study_retries_its_runs_elsewhere(cluster, local_metrics, tmp_path):
    address, start_worker, workers, _ = cluster
    config = tmp_path / "tiny.toml"
    config.write_text("\n".join(f"{k} = {json.dumps(v)}" for k, v in GRID.items()) + "\n")
    out = tmp_path / "study"
    study = subprocess.Popen([sys.executable, "-m", "kerasreg", "study", "--config", str(config), "--out", str(out),
                              "--executor", "ray", "--address", address, "--quiet"],
                             env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        # Once the first run is exported, both one-CPU nodes are busy with the next ones.
        deadline = time.monotonic() + 300
        while not list((out / "runs").glob("*/manifest.json")):
            assert study.poll() is None and time.monotonic() < deadline, study.stdout.read()
            time.sleep(0.2)
        # The study's driver must attach to the head, not to the node killed here: Ray 2.54 and later prefer the head
        # among the nodes of one host; older releases pick either (a Broken pipe here when it is this one).
        os.killpg(workers[-1].pid, signal.SIGKILL)
        output, _ = study.communicate(timeout=600)
    finally:
        if study.poll() is None:
            study.kill()
    assert study.returncode == 0, output
    assert _metrics(out) == local_metrics
    assert "retried after their node died" in (out / "report.md").read_text()
    start_worker()  # leave the cluster as the module found it


def test_ctrl_c_to_a_ray_study_says_one_line_frees_the_cluster_and_leaves_nothing_behind(cluster, tmp_path):
    address, _, _, probe = cluster
    config = tmp_path / "long.toml"
    config.write_text('placements = ["none", "dropout"]\nseeds = [0]\nepochs = 500\nmodels = ["mlp"]\n')
    out = tmp_path / "study"
    study = subprocess.Popen(with_default_sigint([sys.executable, "-m", "kerasreg", "study", "--config", str(config),
                                                  "--out", str(out), "--executor", "ray", "--address", address]),
                             env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while probe.idle_cpus() > 0:  # both one-CPU nodes are training a run
            assert study.poll() is None and time.monotonic() < deadline, study.communicate()
            time.sleep(0.5)
        os.killpg(study.pid, signal.SIGINT)
        _, err = study.communicate(timeout=120)
    finally:
        if study.poll() is None:
            os.killpg(study.pid, signal.SIGKILL)
    assert study.returncode == 130, err
    assert err.strip().splitlines()[-1] == ("kerasreg study: interrupted (SIGINT); workers stopped, nothing "
                                            "half-written. Run the same command with --resume to continue."), err
    assert "Traceback" not in err
    deadline = time.monotonic() + 60
    while probe.idle_cpus() < 2:  # the runs' tasks end with the driver that owned them
        assert time.monotonic() < deadline, "the cluster kept training the interrupted study's runs"
        time.sleep(0.5)
    assert not list((out / "runs").glob(".*.tmp-*")) and not list(out.glob(".lock*"))


def test_an_unreachable_address_fails_at_once_and_writes_nothing(tmp_path):
    out = tmp_path / "study"
    done = subprocess.run([sys.executable, "-m", "kerasreg", "study", "--executor", "ray", "--address",
                           f"127.0.0.1:{_free_port()}", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 2
    assert "Cannot reach a Ray cluster at 127.0.0.1:" in done.stderr
    assert not out.exists()


def test_without_ray_installed_the_error_says_what_to_install():
    code = ("import sys; sys.modules['ray'] = None\n"
            "from kerasreg.study.executors import make_executor\n"
            "try:\n    make_executor('ray')\nexcept ImportError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert 'pip install "kerasreg[ray]"' in done.stdout


@pytest.mark.parametrize("kwargs, match", [
    (dict(executor="dask"), r"argument `executor`\. Expected one of local, ray\. Received: executor='dask'"),
    (dict(executor="ray", workers=2), "`workers` applies to the local executor"),
    (dict(executor="local", address="127.0.0.1:1"), "`address` applies to the ray executor"),
    (dict(executor="ray", address="no-port"), r"Expected HOST:PORT"),
])
def test_bad_executor_arguments_are_named(kwargs, match):
    from kerasreg.study.executors import make_executor

    with pytest.raises(ValueError, match=match):
        make_executor(**kwargs)


def test_a_node_lacking_an_imported_dataset_receives_it_from_the_driver(cluster, data_dir, tmp_path, monkeypatch):
    import hashlib

    import sklearn

    from kerasreg.data.fingerprint import import_record

    address, _, _, _ = cluster
    iris = pathlib.Path(sklearn.__file__).parent / "datasets" / "data" / "iris.csv"
    kerasreg.import_dataset("ray_iris", iris, data_dir=tmp_path / "driver-data")
    # The nodes were started with the session's data directory, which lacks it; the driver uses its own.
    nodes_copy = pathlib.Path(data_dir) / "ray_iris" / "1.0.0"
    assert not nodes_copy.exists()
    monkeypatch.setenv("KERASREG_DATA_DIR", str(tmp_path / "driver-data"))
    config = kerasreg.StudyConfig(**{**GRID, "seeds": [0], "dataset": "ray_iris"})
    report = kerasreg.run_study(config, tmp_path / "study", executor="ray", address=address, verbose=0)
    assert not report.failures
    import tensorflow_datasets as tfds

    record = import_record(tfds.builder_from_directory(str(nodes_copy)).info)
    assert record["sha256"] == hashlib.sha256(iris.read_bytes()).hexdigest()
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "study" / "runs").glob("*/manifest.json")]
    assert len(manifests) == 2 and {m["dataset"]["source_sha256"] for m in manifests} == {record["sha256"]}
