"""Placement strategies: where Dropout and normalisation sit inside a block.

A network is a stack of blocks; a block is an ordered tuple of tokens:
`weight` (Dense or Conv), `norm`, `act` and `drop`. A `Placement` names one
such order plus the dropout scope: dropout in `"every_block"`, or
`"head_only"` (one dropout layer right before the classifier head).

References:
- Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from
  Overfitting", JMLR 2014.
- Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by
  Reducing Internal Covariate Shift", ICML 2015.
- Li, Chen, Hu & Yang, "Understanding the Disharmony between Dropout and Batch
  Normalization by Variance Shift", CVPR 2019 (the `drop_before_bn`,
  `head_dropout` and `uout` placements).
- Chen et al., "Rethinking the Usage of Batch Normalization and Dropout in the
  Training of Deep Neural Networks", 2019 (the `ic` placement).
- Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016 (the
  `drop_before_weight` placement: dropout before a convolution, as in their
  residual blocks, which Li et al. find shifts the variance less).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kerasreg import _checks
from kerasreg._registry import Registry


TOKENS = ("weight", "norm", "act", "drop")
SCOPES = ("every_block", "head_only")

_PLACEMENTS = Registry("placement")


@dataclasses.dataclass(frozen=True)
class Placement:
    """A named order of block tokens plus the scope of dropout.

    Training vs inference: the order only matters because Dropout and
    BatchNormalization behave differently in the two modes. Dropout is
    active only in training; BatchNormalization uses batch statistics in
    training and moving averages in inference, so a Dropout that feeds a
    BatchNormalization makes the statistics it learns differ from what it
    sees at inference (the "variance shift").

    Args:
        name: str. snake_case name used by `build_model(placement=...)`.
        block: tuple of str. Order of `weight`, `norm`, `act`, `drop`
            tokens; `weight` exactly once, each token at most once.
            A space-separated string is accepted too.
        dropout_scope: str. `"every_block"` or `"head_only"`. Defaults to
            `"every_block"`.
        description: str. One line saying what the placement is for.
        reference: str. Where the placement comes from. Defaults to `""`.
        dropout_kind: str or None. A dropout kind the placement implies
            (e.g. `"uout"`); `None` leaves the choice to `build_model`.

    Example:

    >>> p = Placement("drop_first", "weight drop act", description="Dropout right after the weights.")
    >>> p.block
    ('weight', 'drop', 'act')
    """

    name: str
    block: tuple
    dropout_scope: str = "every_block"
    description: str = ""
    reference: str = ""
    dropout_kind: str = None

    def __post_init__(self):
        block = self.block.split() if isinstance(self.block, str) else tuple(self.block)
        object.__setattr__(self, "block", tuple(block))
        bad = [t for t in block if t not in TOKENS]
        if bad or block.count("weight") != 1 or len(set(block)) != len(block):
            raise _checks.invalid("block", f"each of {', '.join(TOKENS)} at most once and `weight` exactly once",
                                  of=f" of placement {self.name!r}", received=f"block={block}")
        _checks.one_of(self.dropout_scope, SCOPES, "dropout_scope")
        if self.dropout_scope == "head_only" and "drop" in block:
            raise ValueError(
                f"Placement {self.name!r} has dropout_scope='head_only', so its block must "
                f"not contain `drop` (the single dropout goes before the head). Received: block={block}"
            )

    @property
    def uses_dropout(self):
        """True when models built with this placement contain dropout."""
        return "drop" in self.block or self.dropout_scope == "head_only"

    @property
    def uses_norm(self):
        """True when the block contains a normalisation layer."""
        return "norm" in self.block

    def block_text(self):
        """The block order as text, e.g. `weight > norm > act > drop`."""
        text = " > ".join(self.block)
        return text + " (drop only before the head)" if self.dropout_scope == "head_only" else text


def register_placement(
    placement: Placement | Callable[[], Sequence[str]] | None = None,
    /,
    *,
    dropout_scope: str = "every_block",
    reference: str = "",
    dropout_kind: str | None = None,
) -> Any:
    """Register a placement, by a plain call or as a decorator.

    Plain call: pass a `Placement`. Decorator: decorate a function whose name
    is the placement name, whose docstring's first line is its description
    and which returns the block order.

    Args:
        placement: a `Placement`, a function returning a block, or `None`
            (then this returns a decorator taking the keyword arguments).
        dropout_scope: str. For the decorator form. Defaults to `"every_block"`.
        reference: str. For the decorator form. Defaults to `""`.
        dropout_kind: str or None. For the decorator form. Defaults to `None`.

    Returns:
        The registered `Placement` (plain call) or the decorated function.

    Example:

    >>> import kerasreg
    >>> @kerasreg.register_placement
    ... def act_before_weight_doc_example():
    ...     '''Dropout straight after the weights, before the activation.'''
    ...     return ("weight", "drop", "act")
    >>> kerasreg.get_placement("act_before_weight_doc_example").block
    ('weight', 'drop', 'act')
    """
    if placement is None:
        return lambda fn: register_placement(
            fn, dropout_scope=dropout_scope, reference=reference, dropout_kind=dropout_kind
        )
    if isinstance(placement, Placement):
        _PLACEMENTS.add(placement.name, placement)
        return placement
    if callable(placement):
        doc = inspect.getdoc(placement) or ""
        _PLACEMENTS.add(
            placement.__name__,
            Placement(
                name=placement.__name__,
                block=placement(),
                dropout_scope=dropout_scope,
                description=doc.splitlines()[0] if doc else "",
                reference=reference,
                dropout_kind=dropout_kind,
            ),
        )
        return placement
    raise TypeError(
        f"register_placement expects a Placement or a function. Received: {placement!r}"
    )


def get_placement(placement: str | Placement) -> Placement:
    """Return a registered `Placement` by name (a `Placement` passes through).

    Example:

    >>> get_placement("bn_before_act").block
    ('weight', 'norm', 'act')
    """
    if isinstance(placement, Placement):
        return placement
    return _PLACEMENTS.get(placement)


def recorded_placement(record: Mapping[str, Any] | None) -> Placement | None:
    """The `Placement` a recorded model config (kerasreg_config, manifest `model` part) was built with.

    Uses the recorded `block` and `dropout_scope` when present (they hold for
    placements registered in another process), else the registered placement
    of that name; `None` when neither is known, e.g. for a model kerasreg did
    not build.

    Example:

    >>> recorded_placement({"placement": "mine", "block": ["weight", "act", "drop"]}).uses_dropout
    True
    >>> recorded_placement({"placement": "none"}).uses_dropout
    False
    """
    record = record or {}
    name, block = record.get("placement"), record.get("block")
    registered = _PLACEMENTS.get(name) if name in _PLACEMENTS else None
    if block is None:
        return registered
    return Placement(str(name or "recorded"), tuple(block), dropout_scope=record.get("dropout_scope") or "every_block",
                     dropout_kind=registered.dropout_kind if registered else None)


def trains_with_dropout(record: Mapping[str, Any]) -> bool:
    """True when a recorded run config trains with dropout: a non-zero rate and a placement with dropout.

    A placement that cannot be told (a model kerasreg did not build) counts as
    having dropout, so its rate decides.

    Example:

    >>> trains_with_dropout({"placement": "bn_act_drop", "dropout_rate": 0.5})
    True
    >>> trains_with_dropout({"placement": "bn_before_act", "dropout_rate": 0.5})
    False
    """
    placement = recorded_placement(record)
    return bool(record.get("dropout_rate")) and (placement is None or placement.uses_dropout)


def list_placements(filter: str = "*") -> list[str]:
    """Sorted names of registered placements matching an fnmatch pattern.

    Example:

    >>> list_placements("bn_*")
    ['bn_act_drop', 'bn_after_act', 'bn_before_act']
    """
    return _PLACEMENTS.names(filter)


_LI_2019 = "Li et al., CVPR 2019"
# The placements kerasreg ships, in the order of the docs' placement table (docs/guide/placements.md).
BUILT_INS = (
    Placement("none", "weight act", description="Baseline without regularisation."),
    Placement("dropout", "weight act drop", description="Classic dropout after each activation.",
              reference="Srivastava et al., JMLR 2014"),
    Placement("bn_before_act", "weight norm act", description="BatchNorm between the weights and the activation.",
              reference="Ioffe & Szegedy, ICML 2015"),
    Placement("bn_after_act", "weight act norm", description="BatchNorm after the activation, the common alternative.",
              reference="common practice"),
    Placement("bn_act_drop", "weight norm act drop",
              description="The everyday recipe; dropout then feeds the next block's BatchNorm.",
              reference="common practice"),
    Placement("drop_before_bn", "weight act drop norm",
              description="Dropout directly before BatchNorm: the worst variance shift.", reference=_LI_2019),
    Placement("ic", "weight act norm drop", description="Independent-Component layer: norm then dropout.",
              reference="Chen et al., 2019"),
    Placement("head_dropout", "weight norm act", dropout_scope="head_only",
              description="BatchNorm in every block, dropout only after the last one.", reference=_LI_2019),
    Placement("uout", "weight norm act drop", dropout_kind="uout",
              description="Variance-stable uniform multiplicative noise instead of dropout.", reference=_LI_2019),
    Placement("drop_before_weight", "drop weight norm act",
              description="Wide ResNet style: dropout before the weights, so a weight layer stands before BatchNorm.",
              reference="Zagoruyko & Komodakis, BMVC 2016"),
)
for _placement in BUILT_INS:
    register_placement(_placement)
