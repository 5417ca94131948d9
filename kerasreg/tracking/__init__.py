"""Tracking in MLflow: runs, studies and searches as MLflow runs (an optional extra).

Needs MLflow (`pip install "kerasreg[mlflow]"`); names load on first use,
so `import kerasreg` never imports it. `kerasreg.train(..., mlflow=URI)`,
`kerasreg train/study/tune --mlflow URI` use it.

Example:

>>> from kerasreg.tracking import MlflowRun
>>> run = MlflowRun("http://127.0.0.1:5000", run_name="demo").start()  # doctest: +SKIP
"""

from kerasreg import _lazy

# The public names are listed in __init__.pyi; each loads on first use.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
