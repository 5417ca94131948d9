"""The one registry idiom used for models, placements, dropout kinds and norm kinds.

A registry maps snake_case names to objects, refuses duplicates (as
torchvision does) and answers unknown names with the full list of valid
names and the closest match (`difflib.get_close_matches`).
"""

import difflib
import fnmatch
import re

_SNAKE_CASE = re.compile(r"[a-z][a-z0-9_]*")


def unknown_name_error(kind, name, choices):
    """Build the ValueError raised for a name that is not registered.

    Example:

    >>> str(unknown_name_error("placement", "bn_befor_act", ["bn_before_act", "none"]))[:40]
    "Unknown placement 'bn_befor_act'. Did yo"
    """
    choices = sorted(choices)
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ValueError(
        f"Unknown {kind} {name!r}.{hint} Valid {kind} names: {', '.join(choices)}."
    )


class Registry:
    """A named collection of builders with duplicate and typo protection.

    Example:

    >>> colours = Registry("colour")
    >>> colours.add("red", 1)
    >>> colours.get("red")
    1
    """

    def __init__(self, kind):
        self.kind = kind
        self._items = {}

    def add(self, name, item):
        """Register `item` under `name`; a taken or non-snake_case name raises."""
        if not isinstance(name, str) or not _SNAKE_CASE.fullmatch(name):
            raise ValueError(
                f"Invalid {self.kind} name {name!r}. Expected snake_case: "
                "lowercase letters, digits and underscores, starting with a letter."
            )
        if name in self._items:
            raise ValueError(
                f"A {self.kind} named {name!r} is already registered. "
                "Choose another name."
            )
        self._items[name] = item

    def get(self, name):
        """Return the item registered as `name`, or raise a helpful ValueError."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise unknown_name_error(self.kind, name, self._items) from None

    def names(self, filter="*"):
        """Sorted registered names matching the fnmatch pattern `filter`."""
        return sorted(n for n in self._items if fnmatch.fnmatch(n, filter))

    def __contains__(self, name):
        return name in self._items
