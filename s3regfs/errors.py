"""UserError: the expected failures of s3regfs.

Owns the one exception type that the command line prints as a single line
(``s3regfs: error: <cause>; <fix>``) without a traceback, with the exit code
it carries (see :mod:`s3regfs.exitcodes`).  Anything else that escapes is a
bug and is shown with a traceback only under ``--debug``.
"""

from __future__ import annotations

from s3regfs import exitcodes


class UserError(Exception):
    """A failure the user can fix: the message names the cause and the fix."""

    def __init__(self, msg: str, exit_code: int = exitcodes.CONFIG) -> None:
        # One line, always: a newline in a message would break journald/grep users.
        super().__init__(" ".join(str(msg).split("\n")))
        self.exit_code = exit_code

    @property
    def msg(self) -> str:
        return str(self.args[0])

    def __str__(self) -> str:
        return self.msg
