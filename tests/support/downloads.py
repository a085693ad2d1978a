"""``download(url)``: one HTTP GET of a signed URL, its status and body (an HTTP error is an answer too)."""

from __future__ import annotations

import urllib.error
import urllib.request


def download(url: str, timeout: float = 30) -> tuple[int, bytes]:
    """GET ``url``: ``(status, body)``, also for 4xx/5xx answers (a refused signature is a 403 to check)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
