"""Analysis: compare exports side by side, the study report, figures and Monte Carlo dropout.

Names load on first use.

Example:

>>> import kerasreg
>>> kerasreg.compare_exports("saved_models").format_table()  # doctest: +SKIP
"""

from kerasreg import _lazy

# Each public name and the module that defines it, imported on first use.
__getattr__, __dir__, __all__ = _lazy.attach(__name__, {
    "kerasreg.analysis.compare": ["Comparison", "compare_exports"],
    "kerasreg.analysis.mc_dropout": ["predict_mc"],
    "kerasreg.analysis.statistics": ["PairedComparison", "comparison_findings", "paired_comparisons"],
})
