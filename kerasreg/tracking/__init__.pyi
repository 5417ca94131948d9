"""Public names of `kerasreg.tracking`: tracking in MLflow: runs, studies and searches as MLflow runs (an optional extra).

The one list of what the package exports: type checkers read it, and
`kerasreg._lazy.attach_stub` turns it into names loaded on first use.
"""

from kerasreg.tracking.mlflow_run import MlflowRun as MlflowRun, TrackingUnavailable as TrackingUnavailable
from kerasreg.tracking.records import (
    MlflowCallback as MlflowCallback,
    final_metrics as final_metrics,
    log_final as log_final,
    log_finished_run as log_finished_run,
    run_params as run_params,
)
