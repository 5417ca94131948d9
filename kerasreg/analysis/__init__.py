"""Analysis: compare exports side by side, the study report, figures and Monte Carlo dropout.

Example:

>>> import kerasreg
>>> kerasreg.compare_exports("saved_models").format_table()  # doctest: +SKIP
"""

from kerasreg.analysis.compare import Comparison, compare_exports
from kerasreg.analysis.mc_dropout import predict_mc

__all__ = ["Comparison", "compare_exports", "predict_mc"]
