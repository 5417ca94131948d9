"""`python -m kerasreg` is the same as the `kerasreg` command."""

from kerasreg._command import run

raise SystemExit(run())
