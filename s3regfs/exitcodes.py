"""The exit codes of the ``s3regfs`` command (documented in docs/CONFIGURATION.md).

Owns the numbers; every module that ends the process uses these names.
``mount`` returns :data:`DATA_LOSS` when it stopped but at least one upload
could not be completed, so a supervisor can tell a clean stop from lost data.
"""

from __future__ import annotations

OK = 0
"""Success (for ``mount``: unmounted cleanly, every upload completed)."""
FAILURE = 1
"""An unexpected internal error (a bug: rerun with ``--debug`` for the traceback)."""
USAGE = 2
"""Bad command-line usage (unknown flag, missing argument)."""
CONFIG = 3
"""Invalid configuration: config file, environment variable or ``-o`` option."""
STORAGE = 4
"""The storage is unreachable or refuses a request (endpoint, bucket, permissions)."""
MOUNT = 5
"""The mount point cannot be used (missing, busy, stale) or FUSE is unavailable."""
DATA_LOSS = 6
"""Unmounted, but some written data could not be uploaded."""
CHECK_FAILED = 7
"""``s3regfs check`` / ``demo --check``: at least one step failed."""
CREDENTIALS = 8
"""No S3 credentials were found, half a key pair was given, or S3 refused the credentials."""
INTERRUPTED = 130
"""Interrupted (Ctrl-C) before the command finished (128 + SIGINT)."""

ALL: dict[str, int] = {
    "OK": OK,
    "FAILURE": FAILURE,
    "USAGE": USAGE,
    "CONFIG": CONFIG,
    "STORAGE": STORAGE,
    "MOUNT": MOUNT,
    "DATA_LOSS": DATA_LOSS,
    "CHECK_FAILED": CHECK_FAILED,
    "CREDENTIALS": CREDENTIALS,
    "INTERRUPTED": INTERRUPTED,
}
"""Name → code, in the order docs/CONFIGURATION.md lists them."""
