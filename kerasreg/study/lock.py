"""One writer per study folder: the lock `kerasreg study` takes before its imports, and `run_study` takes again.

Light on purpose (no Keras, no TensorFlow): a second study into the same
folder is refused in a fraction of a second instead of after the imports
and the validation of its grid.
"""

import pathlib

from kerasreg._locks import Lock

LOCK = ".lock"


def study_lock(out):
    """The lock of study folder `out`, as a context manager (re-entrant within a thread).

    Example:

    >>> with study_lock("/tmp/kerasreg_doc_study"):
    ...     pass
    """
    return Lock(pathlib.Path(out) / LOCK, f"Study {str(out)!r}",
                advice="Wait for it to finish, or give this study another --out.")
