"""``s3regfs install-unit``: the systemd unit and the example config, from the installed package.

Owns the package data (``s3regfs/data/``: the template unit ``s3regfs@.service``, whose
``ExecStart`` names ``/usr/local/bin/s3regfs``, and ``s3regfs.example.yml``; the repository's
``systemd/`` holds the same files), :func:`command` (how the running ``s3regfs`` is started
again: its console script, or ``python -m s3regfs`` with this interpreter), :func:`unit_text`
(the template with that command in ``ExecStart``), :func:`run` (writes both under ``--prefix``,
the example only if absent) and :func:`docs_path` (where the documentation that ships with the
package is: ``<prefix>/share/doc/s3regfs``, or the ``docs/`` of a checkout).
"""

from __future__ import annotations

import os
import shlex
import shutil
import site
import sys
import sysconfig
from importlib import resources
from typing import TextIO

from s3regfs import exitcodes
from s3regfs.errors import UserError

UNIT = "s3regfs@.service"
EXAMPLE = "s3regfs.example.yml"
TEMPLATE_COMMAND = "/usr/local/bin/s3regfs"
UNIT_DIR = "etc/systemd/system"
CONFIG_DIR = "etc/s3regfs"
DOC_DIR = os.path.join("share", "doc", "s3regfs")


def data(name: str) -> str:
    """The text of package data file ``name`` (``s3regfs/data/<name>``)."""
    return (resources.files("s3regfs") / "data" / name).read_text(encoding="utf-8")


def command(argv0: str | None = None) -> str:
    """The running s3regfs as an absolute command: its console script, else this interpreter with ``-m``."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if os.path.basename(argv0) == "s3regfs":
        path = argv0 if os.sep in argv0 else (shutil.which(argv0) or "")
        if path and os.access(path, os.X_OK):
            return shlex.quote(os.path.abspath(path))
    return f"{shlex.quote(os.path.abspath(sys.executable))} -m s3regfs"


def unit_text(cmd: str) -> str:
    """The template unit with ``cmd`` in ``ExecStart`` instead of ``/usr/local/bin/s3regfs``."""
    template = data(UNIT)
    start = f"ExecStart={TEMPLATE_COMMAND} "
    if template.count(start) != 1:
        raise UserError(f"the packaged {UNIT} has no 'ExecStart={TEMPLATE_COMMAND}' line; reinstall s3regfs",
                        exitcodes.FAILURE)
    return template.replace(start, f"ExecStart={cmd} ")


def _write(path: str, text: str, mode: int) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path + ".tmp", mode)
        os.replace(path + ".tmp", path)
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename or path}: {exc.strerror or exc}; run as root, or give "
                        "--prefix DIR to write under another directory", exitcodes.CONFIG) from None


def run(prefix: str, *, dry_run: bool, out: TextIO) -> int:
    """Write the unit (replacing an older one) and the example config (only if absent) under ``prefix``."""
    root = os.path.abspath(prefix)
    unit_path = os.path.join(root, UNIT_DIR, UNIT)
    example_path = os.path.join(root, CONFIG_DIR, EXAMPLE)
    cmd = command()
    text = unit_text(cmd)
    verb = "would write" if dry_run else "wrote"
    if not dry_run:
        _write(unit_path, text, 0o644)
    out.write(f"{verb} {unit_path} (ExecStart={cmd} mount --systemd ...)\n")
    if os.path.exists(example_path):
        out.write(f"kept {example_path} (it exists)\n")
    else:
        if not dry_run:
            _write(example_path, data(EXAMPLE), 0o600)
        out.write(f"{verb} {example_path} (mode 0600)\n")
    config_dir = os.path.dirname(example_path)
    out.write(f"next: cp {example_path} {config_dir}/registry.yml, edit it, then: systemctl daemon-reload && "
              "systemctl enable --now s3regfs@registry\n")
    return exitcodes.OK


def docs_path(name: str = "") -> str:
    """Where the documentation that ships with the package is (``name``: a file of ``docs/``, e.g. CONFIGURATION.md).

    The installed copy (``<prefix>/share/doc/s3regfs/docs``, with README.md beside it) when there is one,
    else the ``docs/`` of the checkout this module runs from.
    """
    bases = [sysconfig.get_path("data"), sys.prefix, getattr(site, "USER_BASE", None) or "", "/usr/local", "/usr"]
    for base in dict.fromkeys(b for b in bases if b):
        docs = os.path.join(base, DOC_DIR, "docs")
        if os.path.isdir(docs):
            return os.path.join(docs, name) if name else docs
    checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
    if os.path.isdir(checkout):
        return os.path.join(checkout, name) if name else checkout
    return f"docs/{name} of the s3regfs source distribution" if name else "docs/ of the s3regfs source distribution"
