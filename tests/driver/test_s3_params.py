"""The s3 driver's parameters (docs/DRIVERS.md §S1): defaults, coercion, ranges, order and the upstream error texts."""

from __future__ import annotations

from typing import Any

import pytest

from s3regfs.driver import ParameterError, factory
from s3regfs.driver.s3.params import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    S3Parameters,
    from_parameters,
    go_sprint,
)

BASE = {"region": "us-east-1", "bucket": "registry"}


def params(**extra: Any) -> S3Parameters:
    return from_parameters({**BASE, **extra})


def error_of(parameters: dict[str, Any]) -> str:
    with pytest.raises(ParameterError) as info:
        from_parameters(parameters)
    return str(info.value)


def test_defaults() -> None:
    p = params()
    assert (p.accesskey, p.secretkey, p.regionendpoint, p.rootdirectory, p.keyid, p.useragent) == ("",) * 6
    assert (p.forcepathstyle, p.encrypt, p.skipverify, p.usedualstack, p.accelerate, p.usefipsendpoint) == (
        False,
    ) * 6
    assert p.secure is True and p.v4auth is True
    assert p.chunksize == 10 * 1024 * 1024 == DEFAULT_CHUNK_SIZE
    assert p.multipartcopychunksize == 32 * 1024 * 1024
    assert p.multipartcopymaxconcurrency == 100
    assert p.multipartcopythresholdsize == 32 * 1024 * 1024
    assert p.storageclass == "STANDARD" and p.objectacl == "private" and p.loglevel == "off"
    assert p.partsinflight == 4 and p.verifyprefixes is False


def test_every_table_key_is_accepted() -> None:
    p = from_parameters(
        {
            "accesskey": "AK", "secretkey": "SK", "region": "eu-west-1", "regionendpoint": "",
            "forcepathstyle": True, "bucket": "b", "encrypt": "true", "keyid": "kms-1", "secure": "false",
            "skipverify": "1", "v4auth": True, "chunksize": "6000000", "multipartcopychunksize": 5242880,
            "multipartcopymaxconcurrency": 8, "multipartcopythresholdsize": 0, "rootdirectory": "/reg/",
            "storageclass": "reduced_redundancy", "useragent": "me/1", "objectacl": "bucket-owner-full-control",
            "usedualstack": "t", "accelerate": "F", "usefipsendpoint": "FALSE", "loglevel": "DEBUG",
            "partsinflight": 2, "verifyprefixes": True,
        }
    )  # fmt: skip
    assert (p.encrypt, p.secure, p.skipverify, p.usedualstack, p.accelerate) == (True, False, True, True, False)
    assert (p.chunksize, p.multipartcopythresholdsize, p.partsinflight) == (6000000, 0, 2)
    assert p.storageclass == "REDUCED_REDUNDANCY" and p.loglevel == "debug" and p.rootdirectory == "/reg/"


@pytest.mark.parametrize("key", ["sessiontoken", "s3accelerate", "maxthreads", "ChunkSize"])
def test_unknown_key_is_named(key: str) -> None:
    assert error_of({**BASE, key: "x"}) == f"unknown s3 parameter: {key}"


def test_secret_is_redacted_in_repr() -> None:
    p = params(accesskey="AKIDEXAMPLE", secretkey="wJalrXUtnFEMI/K7MDENG")
    assert "wJalrXUtnFEMI" not in repr(p) and "wJalrXUtnFEMI" not in str(p)
    assert "secretkey='***'" in repr(p) and "AKIDEXAMPLE" in repr(p)


def test_secret_is_not_in_driver_repr_or_errors() -> None:
    secret = "very-secret-value-123"
    driver = factory.create("s3", {**BASE, "secretkey": secret, "accesskey": "AK"})
    inner = driver.unwrap()  # type: ignore[attr-defined]
    assert secret not in repr(driver) and secret not in repr(inner) and secret not in repr(inner.params)
    message = error_of({**BASE, "secretkey": secret, "chunksize": "1"})
    assert secret not in message


# -- region and bucket ---------------------------------------------------------------


@pytest.mark.parametrize("region", [None, ""])
def test_region_required_without_endpoint(region: str | None) -> None:
    assert error_of({"bucket": "b", "region": region}) == "no region parameter provided"


def test_unknown_region_refused_without_endpoint() -> None:
    assert error_of({"bucket": "b", "region": "mars-north-1"}) == "invalid region provided: mars-north-1"


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1", "cn-north-1", "us-gov-west-1"])
def test_known_regions(region: str) -> None:
    assert from_parameters({"bucket": "b", "region": region}).region == region


def test_any_region_with_endpoint_and_default() -> None:
    assert from_parameters({"bucket": "b", "regionendpoint": "http://minio:9000"}).region == "us-east-1"
    assert from_parameters({"bucket": "b", "regionendpoint": "minio:9000", "region": "garage"}).region == "garage"


@pytest.mark.parametrize("bucket", [None, ""])
def test_bucket_required(bucket: str | None) -> None:
    assert error_of({"region": "us-east-1", "bucket": bucket}) == "no bucket parameter provided"


# -- coercion --------------------------------------------------------------------------

BOOL_KEYS = ["forcepathstyle", "encrypt", "secure", "skipverify", "v4auth", "usedualstack", "accelerate",
             "usefipsendpoint", "verifyprefixes"]  # fmt: skip


@pytest.mark.parametrize("key", BOOL_KEYS)
@pytest.mark.parametrize(
    ("raw", "value"),
    [(True, True), (False, False), ("true", True), ("True", True), ("TRUE", True), ("t", True), ("T", True),
     ("1", True), ("false", False), ("F", False), ("0", False)],
)  # fmt: skip
def test_bool_parse(key: str, raw: Any, value: bool) -> None:
    extra = {"regionendpoint": "http://s3.local"} if key == "v4auth" else {}
    assert getattr(params(**extra, **{key: raw}), key) is value


@pytest.mark.parametrize("key", BOOL_KEYS)
@pytest.mark.parametrize("raw", ["yes", "on", 1, 0, 1.0, "", [True]])
def test_bool_parse_errors_name_the_key(key: str, raw: Any) -> None:
    assert error_of({**BASE, key: raw}) == f"the {key} parameter should be a boolean"


@pytest.mark.parametrize(
    ("raw", "value"),
    [(5242880, 5242880), ("5242880", 5242880), ("5242880abc", 5242880), (" 5242880", 5242880),
     ("+6000000", 6000000), (MAX_CHUNK_SIZE, MAX_CHUNK_SIZE)],
)  # fmt: skip
def test_chunksize_lenient_int_parse(raw: Any, value: int) -> None:
    assert params(chunksize=raw).chunksize == value


@pytest.mark.parametrize(
    ("raw", "shown"),
    [("10MB", "10"), ("0x500000", "0"), (5.5e6, "5"), (5242879, "5242879"), (MAX_CHUNK_SIZE + 1, str(MAX_CHUNK_SIZE + 1)),
     ("-1", "-1"), (0.5, "0")],
)  # fmt: skip
def test_chunksize_range_error(raw: Any, shown: str) -> None:
    assert error_of({**BASE, "chunksize": raw}) == (
        f"the chunksize {shown} parameter should be a number between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} (inclusive)"
    )


@pytest.mark.parametrize(("raw", "shown"), [("abc", "abc"), (True, "true"), ("", ""), ("99999999999999999999", "99999999999999999999")])
def test_int_parse_error(raw: Any, shown: str) -> None:
    assert error_of({**BASE, "multipartcopychunksize": raw}) == (
        f"multipartcopychunksize parameter must be an integer, {shown} invalid"
    )


@pytest.mark.parametrize(
    ("key", "low", "high"),
    [("multipartcopychunksize", MIN_CHUNK_SIZE, MAX_CHUNK_SIZE), ("multipartcopymaxconcurrency", 1, 2**63 - 1),
     ("multipartcopythresholdsize", 0, MAX_CHUNK_SIZE), ("partsinflight", 1, 64)],
)  # fmt: skip
def test_int_ranges(key: str, low: int, high: int) -> None:
    assert getattr(params(**{key: low}), key) == low
    assert getattr(params(**{key: str(high)}), key) == high
    assert error_of({**BASE, key: low - 1}) == (
        f"the {key} {low - 1} parameter should be a number between {low} and {high} (inclusive)"
    )


def test_go_printing_of_values() -> None:
    assert [go_sprint(v) for v in (None, True, 5.5e6, 5242880.0, 100000.0, 1e-5, 12)] == [
        "<nil>", "true", "5.5e+06", "5.24288e+06", "100000", "1e-05", "12",
    ]  # fmt: skip


def test_strings_are_converted() -> None:
    p = params(accesskey=12345, secretkey=678, rootdirectory=7, keyid=True)
    assert (p.accesskey, p.secretkey, p.rootdirectory, p.keyid) == ("12345", "678", "7", "true")


# -- enumerations ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["NONE", "standard", "Standard_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                                   "OUTPOSTS", "GLACIER_IR", "EXPRESS_ONEZONE"])  # fmt: skip
def test_storage_classes(value: str) -> None:
    assert params(storageclass=value).storageclass == value.upper()


@pytest.mark.parametrize(("raw", "shown"), [("GLACIER", "GLACIER"), (5, "5"), (False, "false")])
def test_storage_class_error(raw: Any, shown: str) -> None:
    assert error_of({**BASE, "storageclass": raw}) == (
        "the storageclass parameter must be one of [NONE STANDARD REDUCED_REDUNDANCY STANDARD_IA ONEZONE_IA "
        f"INTELLIGENT_TIERING OUTPOSTS GLACIER_IR EXPRESS_ONEZONE], {shown} invalid"
    )


@pytest.mark.parametrize("acl", ["private", "public-read", "public-read-write", "authenticated-read",
                                 "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control"])  # fmt: skip
def test_object_acls(acl: str) -> None:
    assert params(objectacl=acl).objectacl == acl


@pytest.mark.parametrize(("raw", "shown"), [("Private", "Private"), ("public", "public"), (1, "1")])
def test_object_acl_is_case_sensitive(raw: Any, shown: str) -> None:
    assert error_of({**BASE, "objectacl": raw}) == f"invalid value for objectacl parameter: {shown}"


@pytest.mark.parametrize(
    ("raw", "level"),
    [(None, "off"), (False, "off"), (True, "off"), (3, "off"), ("nonsense", "off"), ("Debug", "debug"),
     ("DEBUGWITHSIGNING", "debugwithsigning"), ("debugwithhttpbody", "debugwithhttpbody"),
     ("debugwithrequestretries", "debugwithrequestretries"), ("debugWithRequestErrors", "debugwithrequesterrors"),
     ("debugwitheventstreambody", "debugwitheventstreambody")],
)  # fmt: skip
def test_log_level(raw: Any, level: str) -> None:
    assert params(loglevel=raw).loglevel == level


# -- v4auth and redirectendpoint ---------------------------------------------------------


def test_v4auth_false_refused_on_amazon_s3_naming_v4_only_region() -> None:
    message = error_of({"bucket": "b", "region": "eu-central-1", "v4auth": False})
    assert message.startswith("on Amazon S3 this storage driver can only be used with v4 authentication")
    assert "eu-central-1" in message


def test_v4auth_false_refused_on_amazonaws_endpoint() -> None:
    message = error_of({"bucket": "b", "region": "us-east-1", "v4auth": "false",
                        "regionendpoint": "https://s3.us-east-1.amazonaws.com"})  # fmt: skip
    assert message.startswith("on Amazon S3 this storage driver can only be used with v4 authentication")
    assert "2020" in message


def test_v4auth_false_allowed_on_custom_endpoint() -> None:
    assert params(v4auth=False, regionendpoint="http://ceph.local:7480").v4auth is False


def test_validation_order_first_error_wins() -> None:
    # forcepathstyle (2) before region (3) before bucket (4) before chunksize (10) before storageclass (15)
    assert error_of({"forcepathstyle": "x", "chunksize": 1}) == "the forcepathstyle parameter should be a boolean"
    assert error_of({"chunksize": 1}) == "no region parameter provided"
    assert error_of({"region": "us-east-1", "chunksize": 1}) == "no bucket parameter provided"
    assert error_of({**BASE, "chunksize": 1, "storageclass": "x"}).startswith("the chunksize 1 parameter")
    assert error_of({**BASE, "storageclass": "x", "v4auth": False}).startswith("the storageclass parameter")
    assert error_of({**BASE, "v4auth": False, "redirectendpoint": "nohost"}).startswith("on Amazon S3")


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [("cdn.example.com", "no scheme specified for redirectendpoint"),
     ("https://", "no host specified for redirectendpoint"),
     ("https://cdn.example.com/base", "redirectendpoint cannot contain a base path: /base"),
     ("https://cdn.example.com/?a=b", "redirectendpoint cannot contain query parameters"),
     ("https://cdn.example.com:99999", "unable to parse redirectendpoint: ")],
)  # fmt: skip
def test_redirect_endpoint_errors(endpoint: str, message: str) -> None:
    assert error_of({**BASE, "redirectendpoint": endpoint}).startswith(message)


def test_redirect_endpoint_accepted() -> None:
    assert params(redirectendpoint="https://cdn.example.com/").redirectendpoint == "https://cdn.example.com/"


def test_factory_reports_parameter_errors() -> None:
    with pytest.raises(ParameterError, match="no bucket parameter provided"):
        factory.create("s3aws", {"region": "us-east-1"})


# -- rootdirectory: a key prefix of plain components ----------------------------------------


@pytest.mark.parametrize(
    ("root", "component"),
    [("/a/../b", ".."), ("..", ".."), ("/registry/..", ".."), ("a//b", "empty"), ("/./x", "."),
     ("/x/.", "."), ("/a/b//c/", "empty"), ("./", ".")],
)  # fmt: skip
def test_rootdirectory_with_dot_dotdot_or_empty_component_is_refused(root: str, component: str) -> None:
    message = error_of({**BASE, "rootdirectory": root})
    assert message.startswith(f"the rootdirectory parameter {root} has ")
    assert (f'a "{component}" component' if component != "empty" else "an empty component") in message


@pytest.mark.parametrize("root", ["", "/", "//", "/registry", "registry/", "//registry//", "/a/b/", "a/b",
                                  "/reg-1/v_2/x.y"])  # fmt: skip
def test_rootdirectory_leading_and_trailing_slashes_are_still_accepted(root: str) -> None:
    assert params(rootdirectory=root).rootdirectory == root
