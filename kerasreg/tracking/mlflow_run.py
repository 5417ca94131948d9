"""`MlflowRun`: one MLflow run that never stops the work it tracks.

Tracking is a record of the work, not part of it: a server that cannot be
reached, refuses a request or goes away mid-run makes the run say once, on
stderr, that tracking failed and why, and the training and the export go on.
An `http(s)` tracking URI is probed first with one `GET <uri>/health` (3 s,
no retries), so a server nobody runs or one answering 5xx fails in seconds
instead of after MLflow's retries, and kerasreg's own requests retry twice at
most.

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
import urllib.error
import urllib.parse
import urllib.request

EXPERIMENT = "kerasreg"
PROBE_SECONDS = 3.0
# MLflow's defaults (7 retries, backoff factor 2, 120 s timeout) let one failing
# request take over four minutes; these bound it to seconds. A user's own
# values win.
REQUEST_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# MLflow accepts at most 1000 metrics per batch request.
BATCH = 1000


class TrackingUnavailable(RuntimeError):
    """The tracking URI cannot be used (server not reachable, MLflow not installed)."""


def _probe(uri):
    """Raise `TrackingUnavailable` unless an `http(s)` URI's server answers `GET /health` without a 5xx."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=PROBE_SECONDS).close()
    except urllib.error.HTTPError as exc:
        # A 4xx may only mean /health is not served or needs the credentials MLflow's
        # own requests send; those requests report it without retrying.
        if exc.code >= 500:
            raise TrackingUnavailable(f"the MLflow server at {uri} answers HTTP {exc.code} ({exc.reason})") from None
    except OSError as exc:  # URLError (refused, unknown host) or a timeout
        reason = getattr(exc, "reason", exc)
        raise TrackingUnavailable(f"no MLflow server answers at {uri} "
                                  f"({getattr(reason, 'strerror', None) or reason})") from None


@contextlib.contextmanager
def _defaults(variables):
    """Set each of `variables` the user has not set, for the block only; the user's environment is left as it was.

    Example:

    >>> with _defaults({"KERASREG_DOCTEST": "1"}):
    ...     os.environ["KERASREG_DOCTEST"]
    '1'
    >>> "KERASREG_DOCTEST" in os.environ
    False
    """
    added = [name for name in variables if name not in os.environ]
    os.environ.update({name: variables[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _request_limits(uri):
    """The variables kerasreg's requests to `uri` run under.

    MLflow 3 refuses a `file:` store unless `MLFLOW_ALLOW_FILE_STORE` is set; a `file:` URI asks for one.
    """
    if str(uri).startswith("file:"):
        return {"MLFLOW_ALLOW_FILE_STORE": "true"}
    return REQUEST_LIMITS


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
            with _defaults(_request_limits(self.uri)):
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
            with _defaults(_request_limits(self.uri)):
                self._open()
        except Exception as exc:
            self._fail(exc)
        return self

    def _open(self):
        if self._client is None:
            try:
                from mlflow import MlflowClient
            except ImportError:
                raise TrackingUnavailable('MLflow is not installed: pip install "kerasreg[mlflow]"') from None
            self._client = MlflowClient(tracking_uri=self.uri)
            found = self._client.get_experiment_by_name(self.experiment)
            self._experiment_id = (found.experiment_id if found is not None
                                   else self._client.create_experiment(self.experiment))
        tags = {"mlflow.parentRunId": self.parent.run_id} if self.parent is not None else {}
        self.run_id = self._client.create_run(self._experiment_id, run_name=self.run_name, tags=tags).info.run_id

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
