"""The daemon's log lines as tests read them: ``[timestamp ]LEVEL name: message``.

stderr and file lines start with a timestamp (``2025-01-31 12:00:00,123 ``) unless journald receives
them (docs/OPERATIONS.md "Logs"); :func:`records` strips it, so a test can match ``LEVEL name: ...``.
"""

from __future__ import annotations

import re

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def records(text: str) -> list[str]:
    """Every line of ``text``, without its leading timestamp."""
    return [TIMESTAMP.sub("", line, count=1) for line in text.splitlines()]
