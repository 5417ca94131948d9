"""`MlflowRun`: one MLflow run that never stops the work it tracks.

Tracking is a record of the work, not part of it: a server that cannot be
reached, refuses a request or goes away mid-run makes the run say once, on
stderr, that tracking failed and why, and the training and the export go on.
An `http(s)` tracking URI is probed with a plain TCP connection first, so a
server nobody runs fails in seconds instead of after MLflow's retries.

Runs go through an explicit `mlflow.MlflowClient`, not MLflow's global
"active run": kerasreg never changes which run the user's own
`mlflow.log_*` calls go to.

Needs MLflow: `pip install "kerasreg[mlflow]"`.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import urllib.parse

from kerasreg._network import probe

EXPERIMENT = "kerasreg"
PROBE_SECONDS = 3.0
# MLflow accepts at most 1000 metrics per batch request.
BATCH = 1000


class TrackingUnavailable(RuntimeError):
    """The tracking URI cannot be used (server not reachable, MLflow not installed)."""


def _probe(uri):
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        probe(parsed.hostname, port, timeout=PROBE_SECONDS)
    except OSError as exc:
        raise TrackingUnavailable(f"no MLflow server answers at {uri} ({exc.strerror or exc})") from None


@contextlib.contextmanager
def _file_store_allowed(uri):
    """MLflow 3 refuses a `file:` store unless `MLFLOW_ALLOW_FILE_STORE` is set; a `file:` URI asks for one.

    Set only while the store is opened, and only when the user has not set it.
    """
    if not str(uri).startswith("file:") or "MLFLOW_ALLOW_FILE_STORE" in os.environ:
        yield
        return
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)


def _scalar(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class MlflowRun:
    """One MLflow run (optionally the child of another), logged through an explicit client.

    Every method returns quietly after a failure: the first failure prints
    `MLflow tracking failed (<uri>): <reason>` on stderr and turns tracking
    off for this run (and its children).

    Args:
        uri: str. An MLflow tracking URI: `http://HOST:PORT`, `file:/path`,
            `sqlite:///path.db`, ...
        run_name: str or None. The run's name in the MLflow UI.
        parent: `MlflowRun` or None. Makes this run a child (nested) run.
        experiment: str or None. Experiment name. Defaults to
            `$MLFLOW_EXPERIMENT_NAME`, else `"kerasreg"`.

    Example:

    >>> run = MlflowRun("file:/tmp/mlruns", run_name="demo").start()  # doctest: +SKIP
    >>> run.log_params({"placement": "ic"}); run.log_metrics({"val_accuracy": 0.9}, step=0); run.end()  # doctest: +SKIP
    """

    def __init__(self, uri, *, run_name=None, parent=None, experiment=None):
        self.uri = str(uri)
        self.run_name = run_name
        self.parent = parent
        self.experiment = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        self.run_id = None
        self.failure = parent.failure if parent is not None else None
        self._client = parent._client if parent is not None else None
        self._experiment_id = parent._experiment_id if parent is not None else None

    @property
    def active(self):
        """True while the run is open and tracking has not failed."""
        return self.run_id is not None and self.failure is None

    def _fail(self, exc):
        if self.failure is None:
            self.failure = str(exc) or type(exc).__name__
            where = f" for run {self.run_name!r}" if self.run_name else ""
            print(f"MLflow tracking failed ({self.uri}){where}: {self.failure}. The work goes on without "
                  "tracking.", file=sys.stderr, flush=True)

    def _guarded(self, action):
        if not self.active:
            return None
        try:
            return action()
        except Exception as exc:  # tracking must never stop the work it records
            self._fail(exc)
            return None

    def start(self):
        """Open the run (and, on the first run of a client, the experiment); returns `self`."""
        if self.failure is not None:
            return self
        try:
            if self._client is None:
                _probe(self.uri)
                try:
                    from mlflow import MlflowClient
                except ImportError:
                    raise TrackingUnavailable('MLflow is not installed: pip install "kerasreg[mlflow]"') from None
                with _file_store_allowed(self.uri):
                    self._client = MlflowClient(tracking_uri=self.uri)
                    found = self._client.get_experiment_by_name(self.experiment)
                    self._experiment_id = (found.experiment_id if found is not None
                                           else self._client.create_experiment(self.experiment))
            tags = {"mlflow.parentRunId": self.parent.run_id} if self.parent is not None else {}
            run = self._client.create_run(self._experiment_id, run_name=self.run_name, tags=tags)
            self.run_id = run.info.run_id
        except Exception as exc:
            self._fail(exc)
        return self

    def child(self, run_name):
        """A started child run of this one (inactive when this run's tracking failed)."""
        child = MlflowRun(self.uri, run_name=run_name, parent=self, experiment=self.experiment)
        return child.start() if self.active else child

    def log_params(self, params):
        """Log parameters (values as text; `None` left out)."""
        from mlflow.entities import Param

        items = [Param(str(k), str(v)[:6000]) for k, v in params.items() if v is not None]
        for start in range(0, len(items), 100):
            self._guarded(lambda chunk=items[start:start + 100]: self._client.log_batch(self.run_id, params=chunk))

    def log_metrics(self, metrics, step=0):
        """Log finite scalar metrics at `step` (anything else is left out)."""
        self.log_history({key: [value] for key, value in metrics.items()}, first_step=step)

    def log_history(self, history, first_step=0):
        """Log per-epoch lists of metrics: value `i` of each list at step `first_step + i`."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(str(key), value, now, first_step + i)
                 for key, values in history.items() for i, raw in enumerate(values or [])
                 if (value := _scalar(raw)) is not None]
        for start in range(0, len(items), BATCH):
            self._guarded(lambda chunk=items[start:start + BATCH]: self._client.log_batch(self.run_id, metrics=chunk))

    def log_artifacts(self, folder, artifact_path=None):
        """Upload the files of `folder` as the run's artifacts (under `artifact_path`)."""
        self._guarded(lambda: self._client.log_artifacts(self.run_id, str(folder), artifact_path))

    def log_artifact(self, file, artifact_path=None):
        """Upload one file as an artifact of the run (under `artifact_path`)."""
        self._guarded(lambda: self._client.log_artifact(self.run_id, str(file), artifact_path))

    def end(self, status="FINISHED"):
        """Close the run as `FINISHED` or `FAILED`."""
        self._guarded(lambda: self._client.set_terminated(self.run_id, status))

    def __enter__(self):
        return self.start()

    def __exit__(self, kind, exc, traceback):
        self.end("FAILED" if kind is not None else "FINISHED")
        return False
