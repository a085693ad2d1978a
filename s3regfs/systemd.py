"""sd_notify without a dependency: READY=1, STOPPING=1, STATUS=... over NOTIFY_SOCKET; JOURNAL_STREAM.

Owns the notification protocol of systemd's ``Type=notify`` services
(sd_notify(3)): one datagram per message on the unix socket named by the
``NOTIFY_SOCKET`` environment variable.  A name starting with ``@`` is a
Linux abstract socket (the ``@`` becomes a NUL byte).  With no
``NOTIFY_SOCKET`` every call is a no-op, so callers need not check.  Sending
never raises: a supervisor that went away must not take the mount with it.

:func:`journal_receives` reads ``JOURNAL_STREAM`` (systemd.exec(5)): whether a
stream is the one journald reads, so log lines need no timestamp of their own.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Self

log = logging.getLogger(__name__)

ENV = "NOTIFY_SOCKET"
JOURNAL_ENV = "JOURNAL_STREAM"


def socket_address(value: str | None = None) -> str | bytes | None:
    """The address to send to, from ``value`` or ``$NOTIFY_SOCKET`` (None when unset)."""
    name = os.environ.get(ENV) if value is None else value
    if not name:
        return None
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    if name.startswith("/"):
        return name
    log.warning("ignoring %s=%r: not an absolute path or @abstract name", ENV, name)
    return None


def journal_receives(fd: int) -> bool:
    """True when ``fd`` is the stream journald reads: ``$JOURNAL_STREAM`` is its ``device:inode``.

    The variable is inherited by children whose stderr may go elsewhere (a pipe, a file), so its
    mere presence is not enough; systemd.exec(5) asks to compare it with the descriptor.
    """
    value = os.environ.get(JOURNAL_ENV, "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def notify(message: str) -> bool:
    """Send ``message`` (e.g. ``"READY=1"`` or ``"STATUS=mounted"``); True if it was sent."""
    address = socket_address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode("utf-8", "replace"), address)
    except OSError as exc:
        log.debug("sd_notify %r failed: %s", message, exc)
        return False
    log.debug("sd_notify %r", message)
    return True


def ready(status: str | None = None) -> bool:
    """``READY=1`` (with an optional ``STATUS=`` line in the same datagram)."""
    return notify("READY=1" + (f"\nSTATUS={status}" if status else ""))


def stopping(status: str | None = None) -> bool:
    """``STOPPING=1`` (with an optional ``STATUS=`` line)."""
    return notify("STOPPING=1" + (f"\nSTATUS={status}" if status else ""))


def status(text: str) -> bool:
    """A ``STATUS=`` line shown by ``systemctl status``."""
    return notify(f"STATUS={text}")


class NotifyListener:
    """A private notification socket: what a supervisor does, for our own background mounts.

    ``s3regfs mount`` without ``-f`` (and the mount(8) helper) start the
    foreground daemon as a child with ``NOTIFY_SOCKET`` pointing here and
    return once it sends ``READY=1`` — or with its exit status if it dies
    first.  Use as a context manager; the socket file is removed on exit.
    """

    def __init__(self) -> None:
        import tempfile

        self._dir = tempfile.mkdtemp(prefix="s3regfs-notify-")
        self.path = os.path.join(self._dir, "notify")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.bind(self.path)
        self.messages: list[str] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        import shutil

        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def child_environ(self) -> dict[str, str]:
        """This process's environment with ``NOTIFY_SOCKET`` set to the listener."""
        env = dict(os.environ)
        env[ENV] = self.path
        return env

    def receive(self, timeout: float) -> list[str]:
        """The ``KEY=value`` lines that arrived within ``timeout`` seconds (possibly none)."""
        import select

        ready, _, _ = select.select([self._sock], [], [], max(0.0, timeout))
        if not ready:
            return []
        data = self._sock.recv(65536)
        lines = data.decode("utf-8", "replace").splitlines()
        self.messages.extend(lines)
        return lines
