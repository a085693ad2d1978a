"""docs/DRIVERS.md says what the code does: every s3 parameter and cloudfront option, with its default.

The parameter set comes from the s3 parameter parser itself (and is confirmed
against it: each listed name is accepted, an unlisted one refused); the
cloudfront option set is recorded from the option names the middleware
actually reads while it is constructed. Defaults are observed by building a
driver configuration or a middleware without the parameter/option.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from s3regfs.driver.errors import ParameterError
from s3regfs.driver.inmemory import InMemoryDriver
from s3regfs.driver.s3 import params as s3params
from s3regfs.durations import parse_duration
from s3regfs.middleware.cloudfront import CloudFrontMiddleware
from s3regfs.middleware.keys import generate_keypair

DOC = Path(__file__).resolve().parent.parent / "docs" / "DRIVERS.md"
REQUIRED = "required"
NO_DEFAULT = "—"

# The parameters of upstream distribution's s3-aws driver (v3.1 + main's redirectendpoint): a fact about
# upstream, used only to check which rows DRIVERS.md marks as s3regfs's own.
UPSTREAM_S3_PARAMETERS = frozenset({
    "accesskey", "secretkey", "region", "regionendpoint", "forcepathstyle", "bucket", "encrypt", "keyid",
    "secure", "skipverify", "v4auth", "chunksize", "multipartcopychunksize", "multipartcopymaxconcurrency",
    "multipartcopythresholdsize", "rootdirectory", "storageclass", "useragent", "objectacl", "usedualstack",
    "accelerate", "usefipsendpoint", "redirectendpoint", "loglevel",
})  # fmt: skip

TYPE_NAMES = {"bool": "bool", "int": "int", "str": "string"}


# -- reading the document ------------------------------------------------------------


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def table(title: str) -> dict[str, dict[str, str]]:
    """The rows of the first table in section ``title``: name → {column: cell}."""
    lines = [line for line in section(title).splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == len(header), f"malformed row in DRIVERS.md: {line}"
        name = cells[0].strip("`")
        assert name not in rows, f"{name} is listed twice"
        rows[name] = dict(zip(header, cells))
    return rows


def documented_default(cell: str) -> str:
    """``required``, ``—`` (no default), or the first backticked value of a default cell."""
    if cell.startswith((REQUIRED, NO_DEFAULT)):
        return cell.split()[0]
    match = re.match(r"`([^`]*)`", cell)
    assert match, f"default cell {cell!r} starts with neither a `value`, 'required' nor '—'"
    return match.group(1)


def shown(value: Any) -> str:
    """A default as DRIVERS.md writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return '""'
    return str(value)


S3_ROWS = table("s3 driver parameters")
CF_ROWS = table("CloudFront middleware options")
S3_FIELDS = {f.name: f for f in fields(s3params.S3Parameters)}


# -- the s3 parameters ---------------------------------------------------------------


def base_parameters(without: str) -> dict[str, Any]:
    """The least that validates (an endpoint, so no region is needed), minus ``without``."""
    base: dict[str, Any] = {"bucket": "registry", "regionendpoint": "http://127.0.0.1:9"}
    if without == "regionendpoint":
        base = {"bucket": "registry", "region": "us-east-1"}
    base.pop(without, None)
    return base


def test_the_table_lists_exactly_the_parameters_the_parser_accepts() -> None:
    accepted = set(S3_FIELDS)
    base = base_parameters("")
    for name in accepted:  # the dataclass fields are the parser's names: each one is accepted ...
        s3params.from_parameters({name: None, **base})
    with pytest.raises(ParameterError, match="notaparameter"):  # ... and anything else is not
        s3params.from_parameters({**base_parameters(""), "notaparameter": "x"})
    assert set(S3_ROWS) == accepted, (
        f"missing from DRIVERS.md: {sorted(accepted - set(S3_ROWS))}; "
        f"listed but not accepted: {sorted(set(S3_ROWS) - accepted)}"
    )


@pytest.mark.parametrize("name", sorted(S3_FIELDS))
def test_each_parameter_has_its_type_and_default(name: str) -> None:
    row = S3_ROWS[name]
    assert row["type"] == TYPE_NAMES[str(S3_FIELDS[name].type)]
    documented = documented_default(row["default"])
    try:
        observed = getattr(s3params.from_parameters(base_parameters(name)), name)
    except ParameterError as exc:
        assert name in str(exc)
        assert documented == REQUIRED, f"{name} is required, DRIVERS.md says default {documented}"
        return
    assert documented == shown(observed), f"{name}: DRIVERS.md says {documented}, the parser gives {observed!r}"
    if REQUIRED in row["default"]:  # a conditional requirement ("required otherwise"): without an endpoint
        with pytest.raises(ParameterError, match=name):
            s3params.from_parameters({k: v for k, v in {"bucket": "b", "region": "us-east-1"}.items() if k != name})


@pytest.mark.parametrize("name", sorted(n for n, f in S3_FIELDS.items() if str(f.type) == "int"))
def test_each_integer_range_is_the_parsers(name: str) -> None:
    numbers = [int(n) for n in re.findall(r"`(\d+)`", S3_ROWS[name]["range"])]
    assert len(numbers) == 2, f"{name}: the range column should be `low`–`high`"
    low, high = numbers
    for ok in (low, high):
        assert getattr(s3params.from_parameters({**base_parameters(name), name: str(ok)}), name) == ok
    for bad in (low - 1, high + 1):
        with pytest.raises(ParameterError, match=name):
            s3params.from_parameters({**base_parameters(name), name: str(bad)})


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("storageclass", s3params.STORAGE_CLASSES),
        ("objectacl", s3params.OBJECT_ACLS),
        ("loglevel", s3params.LOG_LEVELS),
    ],
)
def test_each_enumeration_lists_the_accepted_values(name: str, allowed: tuple[str, ...]) -> None:
    assert set(re.findall(r"`([^`]+)`", S3_ROWS[name]["range"])) == set(allowed)
    for value in allowed:
        assert getattr(s3params.from_parameters({**base_parameters(name), name: value}), name) == value


def test_s3regfs_only_parameters_are_marked() -> None:
    for name, row in S3_ROWS.items():
        marked = "s3regfs only" in row["meaning"]
        assert marked == (name not in UPSTREAM_S3_PARAMETERS), f"{name}: s3regfs-only mark is wrong"


# -- the cloudfront options ----------------------------------------------------------


class RecordingOptions(dict[str, Any]):
    """An options map that remembers every name the middleware looks up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)


@pytest.fixture(scope="module")
def key_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_keypair(tmp_path_factory.mktemp("keys"), bits=1024)[0]


@pytest.fixture
def build(key_path: Path) -> Iterator[Any]:
    made: list[CloudFrontMiddleware] = []
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return b'{"prefixes": [], "ipv6_prefixes": []}'

    def make(without: str = "", **extra: Any) -> CloudFrontMiddleware:
        options = {"baseurl": "https://d111111abcdef8.cloudfront.net/", "privatekey": str(key_path),
                   "keypairid": "APKAEXAMPLE", **extra}
        options.pop(without, None)
        mw = CloudFrontMiddleware(InMemoryDriver(), options, fetch=fetch, initial_wait=5)
        made.append(mw)
        return mw

    make.fetched = fetched  # type: ignore[attr-defined]
    yield make
    for mw in made:
        mw.close()


def test_the_table_lists_exactly_the_options_the_middleware_reads(key_path: Path) -> None:
    options = RecordingOptions(
        baseurl="https://d111111abcdef8.cloudfront.net/", privatekey=str(key_path), keypairid="APKAEXAMPLE",
        ipfilteredby="awsregion", awsregion="us-east-1",
    )
    mw = CloudFrontMiddleware(InMemoryDriver(), options, fetch=lambda url: b"{}", initial_wait=5)
    mw.close()
    assert set(CF_ROWS) == options.read, (
        f"missing from DRIVERS.md: {sorted(options.read - set(CF_ROWS))}; "
        f"listed but never read: {sorted(set(CF_ROWS) - options.read)}"
    )


@pytest.mark.parametrize("name", ["baseurl", "privatekey", "keypairid"])
def test_required_options_are_documented_as_required(name: str, build: Any) -> None:
    assert documented_default(CF_ROWS[name]["default"]) == REQUIRED
    with pytest.raises(ParameterError, match=f"no {name} provided"):
        build(without=name)


def test_option_defaults_are_the_middlewares(build: Any) -> None:
    default = {name: documented_default(row["default"]) for name, row in CF_ROWS.items()}
    plain = build()
    assert parse_duration(default["duration"]) == plain.duration
    assert default["ipfilteredby"] == plain.filter_mode
    assert plain.ip_filter is None
    filtered = build(ipfilteredby="aws")
    assert filtered.ip_filter is not None
    assert parse_duration(default["updatefrequency"]) == filtered.ip_filter.update_frequency
    assert default["iprangesurl"] == filtered.ip_filter.url
    assert build.fetched == []  # fetched only once a client address is asked about
    assert not filtered.ip_filter.eligible("192.0.2.1")
    assert build.fetched == [default["iprangesurl"]]


def test_options_without_a_default(build: Any) -> None:
    assert documented_default(CF_ROWS["awsregion"]["default"]) == NO_DEFAULT
    with pytest.raises(ParameterError, match="(?i)awsregion"):
        build(ipfilteredby="awsregion")
    assert documented_default(CF_ROWS["updatefrenquency"]["default"]) == NO_DEFAULT
    both = build(ipfilteredby="aws", updatefrequency="2h", updatefrenquency="1h")
    assert both.ip_filter is not None and both.ip_filter.update_frequency == 3600  # the deprecated one wins
