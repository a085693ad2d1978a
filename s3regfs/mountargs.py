"""The mount(8) helper's arguments: ``mount.fuse.s3regfs SOURCE MOUNTPOINT [-sfnv] [-N NS] [-o OPTIONS]``.

Owns the translation of mount(8)'s helper calling convention into
``s3regfs mount`` arguments (:func:`translate`, pure) and the helper's run
(:func:`run`, given the CLI's ``main``); it imports neither the CLI nor the
entry point :mod:`s3regfs.mounthelper`, so both can import it.

``mount -t fuse.s3regfs SOURCE DIR -o OPTS`` (and an ``/etc/fstab`` line of
type ``fuse.s3regfs``) runs ``/sbin/mount.fuse.s3regfs`` with the arguments
above; when that helper is not installed in ``/sbin``,
mount(8) falls back to ``mount.fuse3``, which runs ``s3regfs SOURCE DIR -o
OPTS`` — :func:`s3regfs.cli.main` hands that form to :func:`run` too.

SOURCE is

* a path (contains ``/`` or ends in ``.yml``/``.yaml``): the config file;
* ``none``, ``s3regfs`` or ``-``: no config file (everything from ``-o`` and
  the environment);
* ``inmemory``: the in-memory driver (trying things out);
* anything else: the bucket name (``-o bucket=SOURCE``), as s3fs does.

A ``TYPE#SOURCE`` prefix (old mount.fuse syntax) is stripped.  The mount
runs in the background: the helper returns once the filesystem answers
(sd_notify READY over a private socket), as mount(8) expects.  ``-f``
(fake) does nothing; ``-n``, ``-s`` and ``-N`` are accepted and ignored
(FUSE mounts do not use mtab); ``-v`` logs at debug level.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from s3regfs import exitcodes

NO_CONFIG = ("none", "s3regfs", "-", "")


def translate(argv: Sequence[str]) -> list[str] | None:
    """mount(8) helper arguments → ``s3regfs mount`` arguments (None for ``-f``, fake)."""
    positional: list[str] = []
    options: list[str] = []
    verbose = False
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-o" and i + 1 < len(args):
            options.append(args[i + 1])
            i += 2
            continue
        if arg.startswith("-o") and len(arg) > 2:
            options.append(arg[2:])
        elif arg in ("-t", "-N") and i + 1 < len(args):
            i += 2
            continue
        elif arg.startswith("-") and len(arg) > 1 and arg != "--":
            flags = arg[1:]
            if "f" in flags:
                return None
            verbose = verbose or "v" in flags
        else:
            positional.append(arg)
        i += 1
    if len(positional) != 2:
        return []
    source, mountpoint = positional
    if "#" in source:
        source = source.split("#", 1)[1]
    out = ["mount", mountpoint]
    if source.lower() in NO_CONFIG:
        pass
    elif source == "inmemory":
        out += ["--driver", "inmemory"]
    elif "/" in source or source.endswith((".yml", ".yaml")):
        out += ["--config", source]
    else:
        out += ["-o", f"bucket={source}"]
    for value in options:
        out += ["-o", value]
    if verbose:
        out += ["--log-level", "debug"]
    return out


def run(argv: Sequence[str], cli_main: Callable[[list[str]], int]) -> int:
    """Run the helper with ``argv`` (without the program name): ``cli_main`` gets the translated arguments."""
    translated = translate(argv)
    if translated is None:
        return exitcodes.OK
    if not translated:
        sys.stderr.write(
            "s3regfs: error: usage: mount.fuse.s3regfs SOURCE MOUNTPOINT [-o OPTIONS]; "
            "SOURCE is a config file, a bucket name or none\n"
        )
        return exitcodes.USAGE
    return cli_main(translated)
