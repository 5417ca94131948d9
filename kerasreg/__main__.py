"""`python -m kerasreg` is the same as the `kerasreg` command."""

from kerasreg.cli import main

raise SystemExit(main())
