"""Public names of `kerasreg.analysis`: analysis: compare exports side by side, the study report, figures and Monte Carlo dropout.

The one list of what the package exports: type checkers read it, and
`kerasreg._lazy.attach_stub` turns it into names loaded on first use.
"""

from kerasreg.analysis.compare import Comparison as Comparison, compare_exports as compare_exports
from kerasreg.analysis.mc_dropout import predict_mc as predict_mc
from kerasreg.analysis.statistics import (
    PairedComparison as PairedComparison,
    comparison_findings as comparison_findings,
    paired_comparisons as paired_comparisons,
)
