"""Credentials for the background daemon child, through an inherited pipe instead of its environment.

Owns :func:`send` and :func:`receive`.  ``s3regfs mount`` in the background
re-executes itself as a detached child; the credentials that came from the
environment (:func:`s3regfs.config.secret_environ`) are left out of the
child's environment, written as JSON into a pipe before the child starts
(raised to their size, so the write never waits for the reader), and the
child reads them from the read end it inherits (``--secrets-fd N``).  So they
are never in the child's ``/proc/PID/environ``; the child drops them from
its environment again once the driver holds them
(:func:`s3regfs.config.drop_secret_environ`), so no process it starts
inherits them either.
"""

from __future__ import annotations

import fcntl
import json
import os

from s3regfs import exitcodes
from s3regfs.errors import UserError


def send(secrets: dict[str, str]) -> int:
    """A pipe holding ``secrets``, written whole and closed for writing: its read end, for the child."""
    data = json.dumps(secrets).encode()
    read_fd, write_fd = os.pipe()
    try:
        if len(data) > fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ):
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, len(data))
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]
    except OSError as exc:
        os.close(read_fd)
        raise UserError(
            f"cannot hand the credentials to the mount ({exc.strerror or exc}); keep them small, or put them "
            "in the config file (mode 0600)",
            exitcodes.CONFIG,
        ) from None
    finally:
        os.close(write_fd)
    return read_fd


def receive(fd: int) -> dict[str, str]:
    """The variables the parent sent through the pipe ``fd`` (read to its end, then closed)."""
    try:
        with os.fdopen(fd, "rb") as pipe:
            secrets = json.loads(pipe.read())
    except (OSError, ValueError) as exc:
        raise UserError(
            f"--secrets-fd {fd}: cannot read the credentials ({exc}); this option is only for the child that "
            "s3regfs mount starts in the background",
            exitcodes.USAGE,
        ) from None
    if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in [*secrets, *secrets.values()]):
        raise UserError(
            f"--secrets-fd {fd}: not a set of variables; leave this option to s3regfs mount", exitcodes.USAGE
        )
    return secrets
