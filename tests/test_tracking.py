"""MLflow tracking of runs, studies and searches, read back through `mlflow.search_runs`.

One real `mlflow server` (sqlite backend, proxied artifacts) is started on
127.0.0.1 for the module and stopped by its pid; a plain `file:` URI, a
server nobody runs and one that answers 503 to everything are tested too.
"""

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time

import mlflow
import pytest

import kerasreg
from kerasreg import cli

pytestmark = pytest.mark.slow


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The URI of an MLflow tracking server this module starts and stops."""
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    script = os.path.join(os.path.dirname(sys.executable), "mlflow")
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([script, "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
                             "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT,
                            # No job runner: its seven consumer processes serve features kerasreg does not use.
                            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (root / "server.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the MLflow server did not start"
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()  # by its pid; the server stops its own workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _runs(uri, **kwargs):
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=["kerasreg"], **kwargs)


def _steps(uri, run_id, key):
    return [(m.step, m.value) for m in mlflow.MlflowClient(uri).get_metric_history(run_id, key)]


def test_a_trained_run_reaches_the_server_with_its_gap_curves_and_export(server, tmp_path, capsys):
    out = tmp_path / "exports"
    assert cli.main(["train", "--placement", "bn_act_drop", "--widths", "16", "--epochs", "3", "--out", str(out),
                     "--name", "tracked", "--quiet", "--mlflow", server]) == 0
    runs = _runs(server, filter_string="tags.mlflow.runName = 'tracked'")
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["status"] == "FINISHED"
    assert run["params.placement"] == "bn_act_drop" and run["params.architecture"] == "mlp"
    assert run["params.seed"] == "0" and run["params.backend"] == "jax" and run["params.dropout"] == "standard"
    manifest = json.loads((out / "tracked" / "manifest.json").read_text())
    for key in ("clean_gap_accuracy", "reported_gap_accuracy", "variance_shift_max", "val_accuracy", "loss"):
        assert [step for step, _ in _steps(server, run.run_id, key)] == [0, 1, 2], key
    assert run["metrics.test_accuracy"] == pytest.approx(manifest["metrics"]["test_accuracy"])
    assert run["metrics.final_clean_gap_accuracy"] == pytest.approx(manifest["metrics"]["clean_gap_accuracy"])
    artifacts = {a.path for a in mlflow.MlflowClient(server).list_artifacts(run.run_id)}
    assert {"manifest.json", "model.keras", "saved_model", "history.csv"} <= artifacts


def test_a_study_is_one_parent_run_with_a_child_per_grid_point(server, tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text('placements = ["none", "bn_before_act"]\nseeds = [0]\nepochs = 2\nmodels = ["mlp"]\n'
                      'options = {widths = [16]}\n')
    out = tmp_path / "tiny"
    assert cli.main(["study", "--config", str(config), "--out", str(out), "--quiet", "--workers", "1",
                     "--mlflow", server]) == 0
    parents = _runs(server, filter_string="tags.mlflow.runName = 'study tiny'")
    assert len(parents) == 1
    parent = parents.iloc[0].run_id
    children = _runs(server, filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    names = sorted(p.name for p in (out / "runs").iterdir() if not p.name.startswith("."))
    assert sorted(children["tags.mlflow.runName"]) == names
    for _, child in children.iterrows():
        assert len(_steps(server, child.run_id, "clean_gap_accuracy")) == 2
        assert child["params.placement"] in ("none", "bn_before_act")
    bn = children[children["params.placement"] == "bn_before_act"].iloc[0]
    assert len(_steps(server, bn.run_id, "variance_shift_max")) == 2
    assert "report.md" in {a.path for a in mlflow.MlflowClient(server).list_artifacts(parent)}


def test_a_search_is_one_parent_run_with_a_child_per_trial(server, tmp_path, capsys):
    config = tmp_path / "search.toml"
    config.write_text('placements = ["bn_before_act", "dropout"]\nrates = [0.2]\noptions = {widths = [[16]]}\n'
                      'epochs = 2\nmax_trials = 2\nbest = 1\n')
    out = tmp_path / "search"
    assert cli.main(["tune", "--config", str(config), "--out", str(out), "--quiet", "--mlflow", server]) == 0
    parent = _runs(server, filter_string="tags.mlflow.runName = 'tune search'")
    assert len(parent) == 1 and parent.iloc[0]["params.tuner"] == "random"
    children = _runs(server, filter_string=f"tags.mlflow.parentRunId = '{parent.iloc[0].run_id}'")
    assert sorted(children["tags.mlflow.runName"]) == ["trial 0", "trial 1"]
    assert sorted(children["params.hp.placement"]) == ["bn_before_act", "dropout"]
    for _, child in children.iterrows():
        assert len(_steps(server, child.run_id, "clean_gap_accuracy")) == 2
        assert child["metrics.score"] == pytest.approx(child["metrics.final_val_accuracy"])


def test_a_plain_file_uri_tracks_too(tmp_path, monkeypatch):
    uri = f"file:{tmp_path / 'mlruns'}"
    data = kerasreg.load_dataset("mnist1d")
    model = kerasreg.build_model("mlp", placement="dropout", widths=(16,), input_shape=data.input_shape,
                                 num_classes=10, seed=0)
    result = kerasreg.train(model, data, epochs=2, verbose=0, mlflow=uri, run_dir=tmp_path / "run")
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # set only while kerasreg opened the store
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks readers of file stores for it too
    runs = _runs(uri)
    assert len(runs) == 1 and runs.iloc[0]["params.placement"] == "dropout"
    assert _steps(uri, runs.iloc[0].run_id, "clean_gap_accuracy") == [
        (step, pytest.approx(value)) for step, value in enumerate(result.history["clean_gap_accuracy"])]
    assert "model.keras" in {a.path for a in mlflow.MlflowClient(uri).list_artifacts(runs.iloc[0].run_id)}


def test_an_unreachable_server_leaves_the_run_trained_and_exported(tmp_path, capsys):
    uri = f"http://127.0.0.1:{_free_port()}"
    out = tmp_path / "exports"
    assert cli.main(["train", "--placement", "none", "--widths", "8", "--epochs", "1", "--out", str(out),
                     "--name", "untracked", "--quiet", "--mlflow", uri]) == 0
    err = capsys.readouterr().err
    assert f"MLflow tracking failed ({uri}) for run 'untracked': no MLflow server answers at {uri}" in err
    assert "The work goes on without tracking." in err
    assert kerasreg.load(out / "untracked").manifest["metrics"]["val_accuracy"] is not None


class _Unavailable(http.server.BaseHTTPRequestHandler):
    def _refuse(self):
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _refuse

    def log_message(self, *args):
        pass


@pytest.fixture
def unavailable():
    """The URI of a local HTTP server that answers 503 to every request."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_server_answering_503_is_found_at_once_and_the_run_goes_on(unavailable, tmp_path, capsys, monkeypatch):
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "exports"
    started = time.monotonic()
    assert cli.main(["train", "--placement", "none", "--widths", "8", "--epochs", "1", "--out", str(out),
                     "--name", "untracked", "--quiet", "--mlflow", unavailable]) == 0
    assert time.monotonic() - started < 60  # MLflow's own retries alone took 256 s
    err = capsys.readouterr().err
    assert f"MLflow tracking failed ({unavailable}) for run 'untracked': the MLflow server at {unavailable} " \
           "answers HTTP 503" in err
    assert kerasreg.load(out / "untracked").manifest["metrics"]["val_accuracy"] is not None
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # set only around kerasreg's own requests


def test_kerasregs_requests_to_a_failing_server_give_up_in_seconds(unavailable, monkeypatch, capsys):
    from kerasreg.tracking import mlflow_run

    monkeypatch.setattr(mlflow_run, "_probe", lambda uri: None)  # a server that fails after the probe
    started = time.monotonic()
    run = mlflow_run.MlflowRun(unavailable, run_name="late").start()
    assert time.monotonic() - started < 30
    assert not run.active and "503" in capsys.readouterr().err
