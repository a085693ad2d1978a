"""The mount(8) helper's console entry point: ``mount.fuse.s3regfs`` and ``mount.s3regfs``.

Owns only the entry point: the calling convention (SOURCE forms, flags) and its
translation into ``s3regfs mount`` are :mod:`s3regfs.mountargs`, which the CLI
also uses for ``s3regfs SOURCE DIR -o OPTS`` (mount.fuse3's fallback form).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from s3regfs import cli, mountargs
from s3regfs.mountargs import NO_CONFIG, translate

__all__ = ["NO_CONFIG", "main", "run", "translate"]


def run(argv: Sequence[str]) -> int:
    """Run the helper with ``argv`` (without the program name)."""
    return mountargs.run(argv, cli.main)


def main() -> int:
    """Console-script entry point (``mount.fuse.s3regfs``, ``mount.s3regfs``)."""
    return run(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
