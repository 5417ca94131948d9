"""The README's tables agree with the registries."""

import pathlib
import re

import kerasreg
from kerasreg.models import placements

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _table_rows(start_marker, end_marker):
    text = README.read_text()
    table = text[text.index(start_marker):text.index(end_marker)]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows]


def test_placement_table_matches_registry():
    rows = _table_rows("<!-- placements-table", "<!-- /placements-table -->")
    expected = sorted([p.name, p.block_text(), p.reference] for p in placements.BUILT_INS)
    assert sorted(rows) == expected
    for name, _, _ in rows:
        assert kerasreg.get_placement(name) in placements.BUILT_INS


def test_architecture_table_lists_every_builtin_model():
    text = README.read_text()
    section = text[text.index("## Architectures"):text.index("## Datasets")]
    table = section[section.index("| name |"):].split("\n\n")[0]  # the first table: the zoo itself
    names = re.findall(r"^\| `(\w+)` \|", table, flags=re.M)
    builtin = [n for n in kerasreg.list_models() if kerasreg.models.zoo.get_model_fn(n).__module__ == "kerasreg.models.zoo"]
    assert sorted(names) == sorted(builtin)
