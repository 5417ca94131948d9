"""Print pip pins of the lowest versions pyproject.toml declares for the packages given.

`.ci/run` installs them into a second virtual environment and runs the tests marked
`parity` or `lowest` there, so every lower bound it checks is one that was installed and tested.
pip has no "lowest" resolution of its own; the bounds are read, not guessed:

    python3 .ci/lowest.py keras tensorflow jax numpy ml_dtypes   # -> keras==3.10.0 tensorflow==2.20.0 ...
"""

import pathlib
import re
import sys
import tomllib

PYPROJECT = pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml"
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$")


def lowest_pins(names, dependencies):
    """`name[extras]==X.Y.Z` for each name, from its `>=X.Y` bound; a name without one is an error."""
    bounds = {}
    for requirement in dependencies:
        match = REQUIREMENT.match(requirement.split(";")[0])
        name, extras, spec = match.group(1).lower().replace("_", "-"), match.group(2) or "", match.group(3)
        lower = re.search(r">=\s*([0-9][0-9.]*)", spec)
        if lower:
            release = lower.group(1).split(".")
            bounds[name] = f"{name}{extras}=={'.'.join(release + ['0'] * (3 - len(release)))}"
    keys = [n.lower().replace("_", "-") for n in names]
    missing = [n for n, key in zip(names, keys) if key not in bounds]
    if missing:
        raise SystemExit(f"No lower bound declared in {PYPROJECT} for: {', '.join(missing)}")
    return [bounds[key] for key in keys]


if __name__ == "__main__":
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    print(" ".join(lowest_pins(sys.argv[1:], project["dependencies"])))
