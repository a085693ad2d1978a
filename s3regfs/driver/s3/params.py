"""The s3 driver's parameters: defaults, ranges, coercion and the upstream error texts.

Owns: :class:`S3Parameters` and :func:`from_parameters`, a port of the v3 (3.1+)
``FromParameters`` of distribution's s3-aws driver (docs/DRIVERS.md §S1):

* validation in the upstream order, first error wins (§S1);
* values arrive typed from YAML/env (str, int, bool, float, None) and are
  coerced as v3 does (§S1): Go's boolean strings for bools; for ints the
  value is printed as Go would print it and a leading decimal integer is
  scanned (``"10MB"`` → 10, ``5.5e6`` → ``"5.5e+06"`` → 5);
* every error is a :class:`~s3regfs.driver.errors.ParameterError` whose text
  is the upstream one and names the parameter.

Deviations (listed in docs/SEMANTICS.md):

* unknown keys are an error naming the key (upstream ignores them);
* with a ``regionendpoint`` and no ``region`` the region is ``us-east-1``
  (upstream passes the literal ``"<nil>"``, which botocore refuses);
* a ``rootdirectory`` with a ``.``, ``..`` or empty component (``/a/../b``,
  ``a//b``, ``/./x``) is an error: S3 keeps such components literally, and
  no key under that root could be mapped back to a driver path (upstream
  accepts it, and every write then fails); leading and trailing slashes are
  stripped as upstream strips them;
* ``v4auth: false`` is refused on Amazon S3 with a message that also names
  the region when it is one that only ever accepted Signature Version 4;
* ``partsinflight`` (s3regfs only): parts uploaded in the background per
  writer, 1–64, default 4;
* ``verifyprefixes`` (s3regfs only, default false): check every common prefix
  of a directory listing with a one-key listing, for S3-compatible stores that
  keep reporting emptied "directories" as common prefixes (SeaweedFS, whose
  filer removes empty directories minutes later; MinIO with versioning);
* ``accesskey`` without ``secretkey`` (or the reverse) is an error naming
  both (:class:`~s3regfs.driver.errors.CredentialPairError`); upstream
  silently falls back to the AWS credential chain;
* ``retrydeadline`` (s3regfs only): seconds, 1–3600, default 120: the
  ``deadline`` of the retry policy (:mod:`s3regfs.driver.retry`), the longest
  one backend call and its retries may take;
* ``maxattempts`` (s3regfs only): attempts of one request, 0–100, default 0:
  ``AWS_MAX_ATTEMPTS`` or the profile's ``max_attempts``, else 4
  (:mod:`s3regfs.driver.s3.retries`);
* ``profile`` (s3regfs only): the AWS shared-config profile (credentials,
  ``max_attempts``, ``retry_mode``, ``ca_bundle``); one that is in neither
  AWS file is an error naming it;
* ``cabundle`` (s3regfs only): a PEM file of the CA certificates that verify
  the endpoint's TLS certificate; one that cannot be read, or holds no
  certificate, is an error naming it (and it contradicts ``skipverify``).
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from s3regfs.driver.errors import CredentialPairError, ParameterError

MIN_CHUNK_SIZE = 5 * 1024 * 1024
MAX_CHUNK_SIZE = 5 * 1024 * 1024 * 1024
DEFAULT_CHUNK_SIZE = 2 * MIN_CHUNK_SIZE
DEFAULT_MULTIPART_COPY_CHUNK_SIZE = 32 * 1024 * 1024
DEFAULT_MULTIPART_COPY_MAX_CONCURRENCY = 100
DEFAULT_MULTIPART_COPY_THRESHOLD_SIZE = 32 * 1024 * 1024
DEFAULT_PARTS_IN_FLIGHT = 4
MAX_PARTS_IN_FLIGHT = 64
DEFAULT_RETRY_DEADLINE = 120
MAX_RETRY_DEADLINE = 3600
MAX_ATTEMPTS = 100
INT64_MAX = 2**63 - 1
NO_STORAGE_CLASS = "NONE"

STORAGE_CLASSES = (
    "NONE",
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "OUTPOSTS",
    "GLACIER_IR",
    "EXPRESS_ONEZONE",
)

OBJECT_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)

LOG_LEVELS = (
    "off",
    "debug",
    "debugwithsigning",
    "debugwithhttpbody",
    "debugwithrequestretries",
    "debugwithrequesterrors",
    "debugwitheventstreambody",
)

SIGV2_REGIONS = frozenset(
    {
        "us-east-1",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-northeast-1",
        "sa-east-1",
        "us-gov-west-1",
    }
)
"""The Amazon S3 regions that ever accepted Signature Version 2 (all opened before 2014)."""

DEFAULT_ENDPOINT_REGION = "us-east-1"

_GO_BOOL = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}  # fmt: skip

_LEADING_INT = re.compile(r"\s*([+-]?[0-9]+)")


@dataclass(frozen=True)
class S3Parameters:
    """The validated configuration of one s3 driver."""

    accesskey: str = ""
    secretkey: str = ""
    region: str = DEFAULT_ENDPOINT_REGION
    regionendpoint: str = ""
    forcepathstyle: bool = False
    bucket: str = ""
    encrypt: bool = False
    keyid: str = ""
    secure: bool = True
    skipverify: bool = False
    v4auth: bool = True
    chunksize: int = DEFAULT_CHUNK_SIZE
    multipartcopychunksize: int = DEFAULT_MULTIPART_COPY_CHUNK_SIZE
    multipartcopymaxconcurrency: int = DEFAULT_MULTIPART_COPY_MAX_CONCURRENCY
    multipartcopythresholdsize: int = DEFAULT_MULTIPART_COPY_THRESHOLD_SIZE
    rootdirectory: str = ""
    storageclass: str = "STANDARD"
    useragent: str = ""
    objectacl: str = "private"
    usedualstack: bool = False
    accelerate: bool = False
    usefipsendpoint: bool = False
    redirectendpoint: str = ""
    loglevel: str = "off"
    partsinflight: int = DEFAULT_PARTS_IN_FLIGHT
    verifyprefixes: bool = False
    retrydeadline: int = DEFAULT_RETRY_DEADLINE
    maxattempts: int = 0
    profile: str = ""
    cabundle: str = ""

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "secretkey" and value:
                value = "***"
            shown.append(f"{f.name}={value!r}")
        return f"S3Parameters({', '.join(shown)})"

    __str__ = __repr__


# -- Go-compatible printing and parsing ----------------------------------------------


def go_sprint(value: Any) -> str:
    """``value`` printed as Go's ``fmt.Sprint`` prints the YAML-decoded value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_sprint(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{go_sprint(k)}:{go_sprint(v)}" for k, v in value.items()) + "]"
    return str(value)


def _go_float(value: float) -> str:
    """Go's ``%v`` for a float64 (``%g``, shortest digits): exponent form when exp < -4 or exp >= 6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    exp10 = len(text) - 1 + int(exponent)
    prefix = "-" if sign else ""
    if exp10 < -4 or exp10 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if exp10 < 0:
        return f"{prefix}0.{'0' * (-exp10 - 1)}{text}"
    if len(text) <= exp10 + 1:
        return prefix + text + "0" * (exp10 + 1 - len(text))
    return f"{prefix}{text[: exp10 + 1]}.{text[exp10 + 1 :]}"


def parse_go_bool(key: str, value: Any, default: bool) -> bool:
    """A bool s3 parameter, read as upstream v3.1+ reads it (Go's ``strconv.ParseBool`` strings).

    None → ``default``, a bool as is; anything else is an error.  Not the grammar of the
    mount options (``s3regfs.config.options.parse_bool``: yes/no/on/off too).
    """
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _GO_BOOL:
        return _GO_BOOL[value]
    raise ParameterError(f"the {key} parameter should be a boolean")


def parse_int(key: str, value: Any, default: int, low: int, high: int) -> int:
    """v3 int parse: print the value, scan a leading decimal integer, then check the range."""
    if value is None:
        return default
    text = go_sprint(value)
    match = _LEADING_INT.match(text)
    if match is None or not -(2**63) <= int(match.group(1)) <= INT64_MAX:
        raise ParameterError(f"{key} parameter must be an integer, {text} invalid")
    number = int(match.group(1))
    if not low <= number <= high:
        raise ParameterError(
            f"the {key} {number} parameter should be a number between {low} and {high} (inclusive)"
        )
    return number


def _string(value: Any, default: str = "") -> str:
    return default if value is None else go_sprint(value)


@lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every region ID in botocore's built-in endpoint partitions (not service-specific)."""
    import botocore.session

    data = botocore.session.get_session().get_data("endpoints")
    return frozenset(region for partition in data["partitions"] for region in partition["regions"])


# -- FromParameters ------------------------------------------------------------------

_KNOWN_KEYS = frozenset(f.name for f in fields(S3Parameters))


def from_parameters(parameters: Mapping[str, Any]) -> S3Parameters:
    """Validate ``parameters`` (YAML/env-typed values) into :class:`S3Parameters`."""
    unknown = sorted(str(k) for k in parameters if k not in _KNOWN_KEYS)
    if unknown:
        raise ParameterError(f"unknown s3 parameter: {unknown[0]}" if len(unknown) == 1
                             else f"unknown s3 parameters: {', '.join(unknown)}")
    p = parameters.get
    values: dict[str, Any] = {}

    # 1-2: regionendpoint, forcepathstyle
    values["regionendpoint"] = _string(p("regionendpoint"))
    values["forcepathstyle"] = parse_go_bool("forcepathstyle", p("forcepathstyle"), False)
    # 3: region
    region = p("region")
    if not values["regionendpoint"]:
        if region is None or region == "":
            raise ParameterError("no region parameter provided")
        region_text = go_sprint(region)
        if region_text not in known_regions():
            raise ParameterError(f"invalid region provided: {region_text}")
        values["region"] = region_text
    else:
        values["region"] = DEFAULT_ENDPOINT_REGION if region is None or region == "" else go_sprint(region)
    # 4: bucket
    bucket = p("bucket")
    if bucket is None or bucket == "":
        raise ParameterError("no bucket parameter provided")
    values["bucket"] = go_sprint(bucket)
    # 5-9
    values["encrypt"] = parse_go_bool("encrypt", p("encrypt"), False)
    values["secure"] = parse_go_bool("secure", p("secure"), True)
    values["skipverify"] = parse_go_bool("skipverify", p("skipverify"), False)
    values["v4auth"] = parse_go_bool("v4auth", p("v4auth"), True)
    values["keyid"] = _string(p("keyid"))
    # 10-13: sizes
    values["chunksize"] = parse_int("chunksize", p("chunksize"), DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)
    values["multipartcopychunksize"] = parse_int(
        "multipartcopychunksize", p("multipartcopychunksize"), DEFAULT_MULTIPART_COPY_CHUNK_SIZE,
        MIN_CHUNK_SIZE, MAX_CHUNK_SIZE,
    )
    values["multipartcopymaxconcurrency"] = parse_int(
        "multipartcopymaxconcurrency", p("multipartcopymaxconcurrency"),
        DEFAULT_MULTIPART_COPY_MAX_CONCURRENCY, 1, INT64_MAX,
    )
    values["multipartcopythresholdsize"] = parse_int(
        "multipartcopythresholdsize", p("multipartcopythresholdsize"), DEFAULT_MULTIPART_COPY_THRESHOLD_SIZE,
        0, MAX_CHUNK_SIZE,
    )
    # 14-17
    values["rootdirectory"] = _root_directory(p("rootdirectory"))
    values["storageclass"] = _storage_class(p("storageclass"))
    values["useragent"] = _string(p("useragent"))
    values["objectacl"] = _object_acl(p("objectacl"))
    # 18-20
    values["usedualstack"] = parse_go_bool("usedualstack", p("usedualstack"), False)
    values["accelerate"] = parse_go_bool("accelerate", p("accelerate"), False)
    values["usefipsendpoint"] = parse_go_bool("usefipsendpoint", p("usefipsendpoint"), False)
    # 21-22
    values["redirectendpoint"] = _string(p("redirectendpoint"))
    values["loglevel"] = _log_level(p("loglevel"))
    # s3regfs only
    values["partsinflight"] = parse_int(
        "partsinflight", p("partsinflight"), DEFAULT_PARTS_IN_FLIGHT, 1, MAX_PARTS_IN_FLIGHT
    )
    values["verifyprefixes"] = parse_go_bool("verifyprefixes", p("verifyprefixes"), False)
    values["retrydeadline"] = parse_int(
        "retrydeadline", p("retrydeadline"), DEFAULT_RETRY_DEADLINE, 1, MAX_RETRY_DEADLINE
    )
    values["maxattempts"] = parse_int("maxattempts", p("maxattempts"), 0, 0, MAX_ATTEMPTS)
    values["profile"] = _profile(p("profile"))
    values["cabundle"] = _ca_bundle(p("cabundle"), values["skipverify"])
    values["accesskey"] = _string(p("accesskey"))
    values["secretkey"] = _string(p("secretkey"))
    if bool(values["accesskey"]) != bool(values["secretkey"]):
        given, missing = ("accesskey", "secretkey") if values["accesskey"] else ("secretkey", "accesskey")
        raise CredentialPairError(given, missing)
    # 23: v4auth on Amazon S3; 25: redirectendpoint
    _check_v4auth(values)
    _check_redirect_endpoint(values["redirectendpoint"])
    return S3Parameters(**values)


def _root_directory(value: Any) -> str:
    """The root as given (the driver strips leading and trailing ``/``); no ``.``/``..``/empty component."""
    root = _string(value)
    for component in root.strip("/").split("/") if root.strip("/") else ():
        if component in ("", ".", ".."):
            what = f'a "{component}" component' if component else "an empty component"
            raise ParameterError(
                f"the rootdirectory parameter {root} has {what}; S3 keys are not paths, so write the prefix "
                "with plain names only (e.g. /registry)"
            )
    return root


def _profile(value: Any) -> str:
    """An AWS profile that exists in the AWS config or credentials file (botocore reads them)."""
    name = _string(value).strip()
    if not name:
        return ""
    import botocore.session

    session = botocore.session.Session()
    if name not in session.available_profiles:
        files = f"{session.get_config_variable('config_file')} nor {session.get_config_variable('credentials_file')}"
        raise ParameterError(f"the profile parameter {name}: no such AWS profile (neither {files} has it)")
    return name


def _ca_bundle(value: Any, skipverify: bool) -> str:
    """A readable PEM file with at least one certificate; it contradicts ``skipverify``."""
    path = _string(value).strip()
    if not path:
        return ""
    if skipverify:
        raise ParameterError(f"the cabundle parameter {path} contradicts skipverify=true (which verifies nothing)")
    try:
        with open(path, "rb") as f:
            pem = f.read(1 << 22)
    except OSError as exc:
        raise ParameterError(f"the cabundle parameter {path} cannot be read ({exc.strerror or exc})") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ParameterError(f"the cabundle parameter {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return path


def _storage_class(value: Any) -> str:
    if value is None:
        return "STANDARD"
    if isinstance(value, str) and value.upper() in STORAGE_CLASSES:
        return value.upper()
    allowed = "[" + " ".join(STORAGE_CLASSES) + "]"
    raise ParameterError(f"the storageclass parameter must be one of {allowed}, {go_sprint(value)} invalid")


def _object_acl(value: Any) -> str:
    if value is None:
        return "private"
    if isinstance(value, str) and value in OBJECT_ACLS:
        return value
    raise ParameterError(f"invalid value for objectacl parameter: {go_sprint(value)}")


def _log_level(value: Any) -> str:
    """3.1+: case-insensitive known names; anything else (incl. YAML ``off`` = false) is off."""
    if isinstance(value, str) and value.lower() in LOG_LEVELS:
        return value.lower()
    return "off"


def is_amazon_endpoint(endpoint: str) -> bool:
    """True for no endpoint or one on ``amazonaws.com`` (Amazon S3 itself)."""
    if not endpoint:
        return True
    host = urlsplit(endpoint if "://" in endpoint else "//" + endpoint).hostname or ""
    return host == "amazonaws.com" or host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn")


def _check_v4auth(values: Mapping[str, Any]) -> None:
    if values["v4auth"] or not is_amazon_endpoint(values["regionendpoint"]):
        return
    message = "on Amazon S3 this storage driver can only be used with v4 authentication"
    region = values["region"]
    if region not in SIGV2_REGIONS:
        message += f" (region {region} only ever accepted Signature Version 4)"
    else:
        message += " (buckets created since June 2020 refuse Signature Version 2 in every region)"
    raise ParameterError(message)


def _check_redirect_endpoint(endpoint: str) -> None:
    if not endpoint:
        return
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ParameterError(f"unable to parse redirectendpoint: {exc}") from None
    if not parts.scheme:
        raise ParameterError("no scheme specified for redirectendpoint")
    if not parts.netloc:
        raise ParameterError("no host specified for redirectendpoint")
    if parts.path not in ("", "/"):
        raise ParameterError(f"redirectendpoint cannot contain a base path: {parts.path}")
    if parts.query:
        raise ParameterError("redirectendpoint cannot contain query parameters")
