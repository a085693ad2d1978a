"""docs/CONFIGURATION.md agrees with the code: every option, its default, every flag, every exit code."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from s3regfs import cli, exitcodes
from s3regfs.driver.s3.params import S3Parameters
from s3regfs.durations import parse_duration
from s3regfs.fs.options import FsOptions
from s3regfs.middleware import cloudfront, ipfilter
from s3regfs.config.options import FUSE_FLAGS, FUSE_VALUED, IGNORED, MOUNT_OPTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "CONFIGURATION.md"


def section(title: str) -> str:
    text = DOC.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.DOTALL | re.MULTILINE)
    assert match, f"docs/CONFIGURATION.md has no section '## {title}'"
    return match.group(1)


def table(title: str) -> dict[str, list[str]]:
    """First column (without backticks) → the other cells, of the first table in the section."""
    rows: dict[str, list[str]] = {}
    for line in section(title).splitlines():
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in ("parameter", "option", "flag", "code"):
            continue
        rows[cells[0].replace("`", "")] = [c.replace("`", "") for c in cells[1:]]
    return rows


def render(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value == "":
        return "(empty)"
    return str(value)


def test_every_s3_parameter_is_documented_with_its_default() -> None:
    documented = {name: cells[0] for name, cells in table("s3 driver parameters").items()}
    code = {f.name: render(f.default) for f in dataclasses.fields(S3Parameters)}
    assert documented == code


def test_every_cloudfront_option_is_documented_with_its_default() -> None:
    rows = {name: cells[0] for name, cells in table("CloudFront middleware options").items()}
    assert sorted(rows) == sorted(
        [
            "baseurl",
            "privatekey",
            "keypairid",
            "duration",
            "ipfilteredby",
            "awsregion",
            "updatefrequency",
            "updatefrenquency",
            "iprangesurl",
        ]
    )
    source = Path(cloudfront.__file__).read_text()
    for name in rows:  # each documented option is read by the middleware
        assert f'"{name}"' in source, name
    assert parse_duration(rows["duration"]) == cloudfront.DEFAULT_DURATION
    assert parse_duration(rows["updatefrequency"]) == ipfilter.DEFAULT_UPDATE_FREQUENCY
    assert rows["iprangesurl"] == ipfilter.DEFAULT_IP_RANGES_URL
    assert rows["ipfilteredby"] == "none"
    assert {rows[n] for n in ("baseurl", "privatekey", "keypairid")} == {"(required)"}


def test_every_mount_option_is_documented_with_its_default() -> None:
    rows = table("Mount options")
    assert list(rows) == list(MOUNT_OPTIONS)  # same names, same order
    for name, cells in rows.items():
        assert cells[0] == MOUNT_OPTIONS[name].default, name


def test_documented_mount_defaults_are_the_real_defaults() -> None:
    defaults = FsOptions()
    for option in MOUNT_OPTIONS.values():
        if option.target != "fs" or option.name in ("uid", "gid", "cache_dir"):
            continue
        assert option.parse(option.default) == getattr(defaults, option.field), option.name
    assert FsOptions.__dataclass_fields__["cache_dir"].default == "/var/cache/s3regfs"


def test_every_fs_option_field_has_a_mount_option() -> None:
    assert {f.name for f in dataclasses.fields(FsOptions)} <= {o.field for o in MOUNT_OPTIONS.values()}


def test_the_o_word_lists_match_the_code() -> None:
    text = section("Sources and precedence")
    fuse = re.search(r"\*\*FUSE option\*\*.*?:(.*?);\n\* ", text, re.DOTALL)
    ignored = re.search(r"accepted and ignored:(.*?), and every", text, re.DOTALL)
    assert fuse and ignored
    words = lambda chunk: {w.rstrip("=") for w in re.findall(r"`([^`]+)`", chunk)}
    assert words(fuse.group(1)) == set(FUSE_FLAGS) | set(FUSE_VALUED)
    assert words(ignored.group(1)) == set(IGNORED)


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    found = set()
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _flags(sub)
        found.update(action.option_strings)
    return found


def test_every_cli_flag_is_documented_and_every_documented_flag_exists() -> None:
    documented = set()
    for name in table("Command line"):
        documented.update(part.strip() for part in name.split(","))
    assert documented == _flags(cli.build_parser())


def test_every_exit_code_is_documented() -> None:
    rows = table("Exit codes")
    assert {cells[0]: int(code) for code, cells in rows.items()} == exitcodes.ALL


@pytest.mark.parametrize("command", ["mount", "url", "check", "uploads list|abort", "status", "demo", "install-unit"])
def test_the_synopsis_lists_every_command(command: str) -> None:
    assert f"s3regfs {command}" in section("Command line")
