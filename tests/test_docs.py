"""The documentation site builds strictly, its code runs, and its tables agree with the registries."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

import kerasreg
from kerasreg.models import placements

# The pages' examples train for a few epochs each: compiling is most of their time (conftest.py).
pytestmark = pytest.mark.usefixtures("quick_compile")

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# Every page whose ```python blocks run: the README and the site, but not the generated reference.
PAGES = sorted([ROOT / "README.md", *(p for p in DOCS.rglob("*.md") if "reference" not in p.parts)])
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", flags=re.S | re.M)


def _page_id(path):
    return str(path.relative_to(ROOT))


def _script(text):
    """The page's python blocks as one script, each block on its own lines of the page (so tracebacks point there)."""
    lines = [""] * (text.count("\n") + 1)
    for match in PYTHON_BLOCK.finditer(text):
        first = text[:match.start(1)].count("\n")
        for i, line in enumerate(match.group(1).splitlines()):
            lines[first + i] = line
    return "\n".join(lines)


def test_site_builds_strictly(tmp_path):
    # --strict turns every warning into a failure: a broken link, a page missing from the nav, a docstring
    # mkdocstrings cannot render, an `Example:` it would read as prose.
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "reference" / "models" / "index.html").read_text().count("build_model") > 1


PAGES_WITH_CODE = [p for p in PAGES if PYTHON_BLOCK.search(p.read_text())]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_page_id)
def test_python_blocks_of_page_run(page, tmp_path, monkeypatch):
    # In this process, as one script in an empty folder: what a page registers ends with the test (conftest.py).
    monkeypatch.chdir(tmp_path)
    exec(compile(_script(page.read_text()), _page_id(page), "exec"), {"__name__": "__main__"})


def test_script_keeps_each_block_on_its_page_lines():
    text = "# t\n\n```python\nx = 1\n```\n\n```bash\nls\n```\n```python\ny = x\n```\n"
    assert _script(text).splitlines()[3] == "x = 1"
    assert _script(text).splitlines()[10] == "y = x"
    assert "ls" not in _script(text)


def test_every_public_name_has_a_reference_entry():
    documented = set()
    for page in (DOCS / "reference").glob("*.md"):
        documented |= set(re.findall(r"^::: kerasreg\.(\w+)$", page.read_text(), flags=re.M))
    assert sorted(set(kerasreg.__all__) - {"__version__"} - documented) == []


def _table_rows(text, start_marker, end_marker):
    table = text[text.index(start_marker):text.index(end_marker)]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows]


def test_placement_table_matches_registry():
    text = (DOCS / "guide" / "placements.md").read_text()
    rows = _table_rows(text, "<!-- placements-table", "<!-- /placements-table -->")
    expected = sorted([p.name, p.block_text(), p.reference] for p in placements.BUILT_INS)
    assert sorted(rows) == expected
    for name, _, _ in rows:
        assert kerasreg.get_placement(name) in placements.BUILT_INS


def test_architecture_table_lists_every_builtin_model():
    text = (DOCS / "guide" / "placements.md").read_text()
    section = text[text.index("## Architectures"):]
    table = section[section.index("| name |"):].split("\n\n")[0]  # the first table: the zoo itself
    names = re.findall(r"^\| `(\w+)` \|", table, flags=re.M)
    builtin = [n for n in kerasreg.list_models() if kerasreg.models.zoo.get_model_fn(n).__module__ == "kerasreg.models.zoo"]
    assert sorted(names) == sorted(builtin)


def test_readme_stays_a_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    ci = (ROOT / ".ci" / "run").read_text()
    command = 'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && .venv/bin/python -m pytest'
    assert command in readme and command in ci
