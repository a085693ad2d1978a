"""Helpers around the session's local S3 server: unique bucket names."""

from __future__ import annotations

import itertools
import os
import secrets

_counter = itertools.count(1)


def unique_bucket_name(prefix: str = "t") -> str:
    """A bucket name unique in this session and across concurrent sessions (3–63 chars, DNS-safe)."""
    return f"{prefix}-{os.getpid()}-{next(_counter)}-{secrets.token_hex(3)}"
