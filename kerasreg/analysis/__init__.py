"""Analysis: compare exports side by side, the study report, figures and Monte Carlo dropout.

Example:

>>> import kerasreg
>>> kerasreg.compare_exports("saved_models").format_table()  # doctest: +SKIP
"""

from kerasreg.analysis.compare import Comparison, compare_exports
from kerasreg.analysis.mc_dropout import predict_mc
from kerasreg.analysis.statistics import PairedComparison, comparison_findings, paired_comparisons

__all__ = ["Comparison", "PairedComparison", "compare_exports", "comparison_findings", "paired_comparisons",
           "predict_mc"]
