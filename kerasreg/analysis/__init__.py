"""Analysis: compare exports side by side, the study report, figures and Monte Carlo dropout.

Names load on first use.

Example:

>>> import kerasreg
>>> kerasreg.compare_exports("saved_models").format_table()  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from kerasreg import _lazy

if TYPE_CHECKING:
    from kerasreg.analysis.compare import Comparison, compare_exports
    from kerasreg.analysis.mc_dropout import predict_mc
    from kerasreg.analysis.statistics import PairedComparison, comparison_findings, paired_comparisons

__getattr__, __dir__, __all__ = _lazy.attach_typed(__name__, __file__)
