"""`BatchNormFinding`: one thing the BatchNorm audit found in one layer, with its fix."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class BatchNormFinding:
    """One thing the audit found in one BatchNormalization layer (or in the backbone holding some).

    Fields:
        layer: str. The layer's name (nested models' layers by their own
            names; a backbone's name for a fine-tuning finding).
        kind: str. `"never updated"`, `"dead channels"`, `"extreme variance"`,
            `"frozen"`, `"momentum"`, `"stale statistics"`, `"batch size"` or
            `"fine-tuning"`.
        text: str. What was found, with its numbers.
        fix: str. What to do about it.
        problem: bool. False for a note (what Keras does with a frozen
            layer, a momentum no step count can judge, accuracies that hold
            at every batch size). Defaults to `True`.

    Example:

    >>> BatchNormFinding("bn", "frozen", "bn is frozen", "call it with training=False", problem=False).kind
    'frozen'
    """

    layer: str
    kind: str
    text: str
    fix: str
    problem: bool = True

    def sentence(self):
        """The finding and its fix in one sentence."""
        return f"{self.text}: {self.fix}."
