"""s3regfs.config: sources, precedence, registry env overrides, one-line errors, and a fuzz of the loader."""

from __future__ import annotations

import logging
import os
import textwrap
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3regfs import config, exitcodes, logs
from s3regfs.config.options import MOUNT_OPTIONS
from s3regfs.errors import UserError

REGISTRY_YML = textwrap.dedent("""\
    version: 0.1
    log:
      level: debug
    http:
      addr: :5000
      secret: http-secret-not-ours
    storage:
      s3:
        accesskey: AKIAFILEKEY
        secretkey: file-secret-value
        region: eu-west-1
        bucket: file-bucket
        rootdirectory: /registry
        chunksize: 10485760
      delete:
        enabled: true
      maintenance:
        uploadpurging:
          enabled: false
      redirect:
        disable: true
    middleware:
      storage:
        - name: cloudfront
          options:
            baseurl: https://d1.cloudfront.net/
            privatekey: /etc/pk.pem
            keypairid: KFILE
            duration: 3000s
    notifications:
      endpoints: []
    s3regfs:
      metadata_ttl: 45s
      file_mode: 0444
      dir_mode: 555
      allow_other: true
    """)


def load(
    text: str | None = REGISTRY_YML,
    env: dict[str, str] | None = None,
    options: list[str] | None = None,
    driver: str | None = None,
    flags: dict[str, Any] | None = None,
) -> config.Config:
    return config.load(text=text, environ=env or {}, options=options or [], driver=driver, flags=flags)


def error_of(**kwargs: Any) -> UserError:
    with pytest.raises(UserError) as info:
        load(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    return info.value


# -- the registry file -----------------------------------------------------------------


def test_the_registry_file_gives_driver_middleware_and_mount_options() -> None:
    cfg = load()
    assert cfg.driver.name == "s3"
    assert cfg.driver.parameters == {
        "accesskey": "AKIAFILEKEY",
        "secretkey": "file-secret-value",
        "region": "eu-west-1",
        "bucket": "file-bucket",
        "rootdirectory": "/registry",
        "chunksize": 10485760,
    }
    assert [(m.name, dict(m.options)) for m in cfg.middleware] == [
        (
            "cloudfront",
            {
                "baseurl": "https://d1.cloudfront.net/",
                "privatekey": "/etc/pk.pem",
                "keypairid": "KFILE",
                "duration": "3000s",
            },
        )
    ]
    assert cfg.fs.metadata_ttl == 45.0
    assert cfg.fs.file_mode == 0o444
    assert cfg.fs.dir_mode == 0o555  # a YAML 555 is octal too
    assert cfg.mount.allow_other is True


def test_defaults_without_any_source() -> None:
    assert "no bucket parameter provided" in str(error_of(text=None)) or "no region" in str(
        error_of(text=None)
    )
    cfg = load(text=None, options=["bucket=b,region=us-east-1"])
    assert cfg.driver.name == "s3" and dict(cfg.driver.parameters) == {"bucket": "b", "region": "us-east-1"}
    assert cfg.middleware == ()
    assert cfg.fs.file_mode == 0o644 and cfg.fs.read_only is False and cfg.fs.metadata_ttl == 4.0
    assert cfg.mount.log_level == "info" and cfg.mount.foreground is False


def test_s3aws_is_the_same_driver() -> None:
    cfg = load("version: 0.1\nstorage:\n  s3aws:\n    bucket: b\n    region: us-east-1\n")
    assert cfg.driver.name == "s3aws" and cfg.driver.parameters["bucket"] == "b"


def test_middleware_entries_keep_their_order() -> None:
    text = (
        "version: 0.1\nstorage: {s3: {bucket: b, region: us-east-1}}\nmiddleware:\n  storage:\n"
        "    - {name: cloudfront, options: {baseurl: one}}\n    - {name: cloudfront, options: {baseurl: two}}\n"
    )
    assert [m.options["baseurl"] for m in load(text).middleware] == ["one", "two"]


@pytest.mark.parametrize("driver", ["filesystem", "azure", "gcs", "inmemory", "swift"])
def test_another_storage_driver_is_an_error_naming_it(driver: str) -> None:
    exc = error_of(text=f"version: 0.1\nstorage:\n  {driver}:\n    rootdirectory: /var/lib/registry\n")
    assert f"the {driver} storage driver cannot be mounted" in str(exc)
    assert f"(storage.{driver})" in str(exc)
    assert exc.exit_code == exitcodes.CONFIG


def test_a_bare_driver_string_is_a_driver_without_parameters() -> None:
    assert load("version: 0.1\nstorage: s3\n", options=["bucket=b,region=us-east-1"]).driver.name == "s3"
    assert "inmemory storage driver cannot be mounted" in str(
        error_of(text="version: 0.1\nstorage: inmemory\n")
    )


def test_two_storage_drivers_are_an_error() -> None:
    exc = error_of(text="version: 0.1\nstorage:\n  s3: {bucket: b}\n  filesystem: {rootdirectory: /x}\n")
    assert "multiple storage drivers" in str(exc) and "s3, filesystem" in str(exc)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("storage: {s3: {bucket: b}}\n", "no 'version' key; add 'version: 0.1'"),
        ("version: 0.2\nstorage: {s3: {bucket: b}}\n", "version 0.2 is not supported"),
        ("version: 0.1\nstorage: [s3]\n", "storage must be a mapping"),
        ("version: 0.1\nstorage: {s3: [a]}\n", "parameters must be a mapping"),
        ("version: 0.1\nmiddleware: {storage: {name: cloudfront}}\n", "middleware.storage must be a list"),
        ("version: 0.1\nmiddleware: {storage: [{options: {}}]}\n", "needs 'name: cloudfront'"),
        (
            "version: 0.1\nmiddleware: {storage: [{name: nosuch}]}\n",
            "no storage middleware registered with name: nosuch",
        ),
        ("version: 0.1\ns3regfs: {metadata_tt: 5}\n", "(s3regfs.metadata_tt): unknown s3regfs option"),
        ("version: 0.1\ns3regfs: [1]\n", "must be a mapping of mount options"),
        ("- a\n- b\n", "the top level is a list, not a mapping"),
        ("version: 0.1\nstorage: {s3: {bucket: a, bucket: b}}\n", "duplicate key 'bucket'"),
        ("version: 0.1\nstorage: {s3: {bucket: [}\n", "invalid YAML at line 2"),
        ("a: &x [*x]\nversion: 0.1\n", "recursive"),
    ],
)
def test_bad_files_are_one_line_errors(text: str, expected: str) -> None:
    exc = error_of(text=text)
    assert expected in str(exc)
    assert str(exc).startswith("config file <text>")
    assert exc.exit_code == exitcodes.CONFIG


def test_a_missing_file_names_the_path(tmp_path: Any) -> None:
    with pytest.raises(UserError) as info:
        config.load(str(tmp_path / "nope.yml"), environ={})
    assert f"config file {tmp_path / 'nope.yml'}: No such file or directory; pass the path" in str(info.value)


def test_other_registry_sections_and_middleware_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    text = REGISTRY_YML.replace(
        "    - name: cloudfront\n",
        "    - name: redirect\n      options:\n        baseurl: https://x/\n    - name: cloudfront\n",
    )
    with caplog.at_level(logging.WARNING):
        cfg = load(text)
    assert [m.name for m in cfg.middleware] == ["cloudfront"]
    assert "storage middleware redirect ignored" in caplog.text


# -- precedence ------------------------------------------------------------------------


def test_environment_overrides_the_file_and_o_overrides_the_environment() -> None:
    env = {
        "REGISTRY_STORAGE_S3_BUCKET": "env-bucket",
        "REGISTRY_STORAGE_S3_REGION": "us-west-2",
        "S3REGFS_METADATA_TTL": "60",
        "S3REGFS_FILE_MODE": "0400",
    }
    cfg = load(env=env, options=["bucket=o-bucket,file_mode=0600"])
    assert cfg.driver.parameters["bucket"] == "o-bucket"
    assert cfg.driver.parameters["region"] == "us-west-2"
    assert cfg.driver.parameters["rootdirectory"] == "/registry"
    assert cfg.fs.metadata_ttl == 60.0
    assert cfg.fs.file_mode == 0o600
    assert cfg.driver.source_of("bucket") == "-o bucket"
    assert cfg.driver.source_of("region") == "environment variable REGISTRY_STORAGE_S3_REGION"
    assert cfg.driver.source_of("rootdirectory") == "config file <text> (storage.s3.rootdirectory)"


def test_flags_override_o_options() -> None:
    cfg = load(options=["log_level=error"], flags={"log_level": "debug"})
    assert cfg.mount.log_level == "debug"
    assert load(options=["log_level=error"]).mount.log_level == "error"


def test_a_later_o_option_wins() -> None:
    cfg = load(options=["ro", "rw,uid=7", "uid=8"])
    assert cfg.fs.read_only is False and cfg.fs.uid == 8


def test_systemd_implies_foreground() -> None:
    cfg = load(flags={"systemd": True})
    assert cfg.mount.systemd and cfg.mount.foreground


def test_driver_flag_replaces_the_files_driver_and_its_parameters() -> None:
    cfg = load(driver="inmemory")
    assert cfg.driver.name == "inmemory" and dict(cfg.driver.parameters) == {}
    assert cfg.fs.metadata_ttl == 45.0  # the s3regfs section still applies
    exc = error_of(driver="inmemory", options=["bucket=x"])
    assert "-o bucket: the inmemory driver takes no parameters; remove bucket" in str(exc)


# -- registry environment variables ----------------------------------------------------


def test_registry_env_values_are_yaml_decoded() -> None:
    env = {
        "REGISTRY_STORAGE_S3_SECURE": "false",
        "REGISTRY_STORAGE_S3_CHUNKSIZE": "5242880",
        "REGISTRY_STORAGE_S3_ENCRYPT": "yes",
        "REGISTRY_STORAGE_S3_SECRETKEY": "0x1F",
        "REGISTRY_STORAGE_S3_ACCESSKEY": "'0x1F'",
        "REGISTRY_STORAGE_S3_KEYID": "null",
        "REGISTRY_STORAGE_S3_USERAGENT": "2024-01-01",
    }
    params = load(env=env).driver.parameters
    assert params["secure"] is False
    assert params["chunksize"] == 5242880 and type(params["chunksize"]) is int
    assert params["encrypt"] is True
    assert params["secretkey"] == 31  # the registry's gotcha, documented: quote such secrets
    assert params["accesskey"] == "0x1F"
    assert "keyid" not in params  # null = absent
    assert params["useragent"] == "2024-01-01"  # no timestamps, as in Go's YAML


def test_registry_env_keys_match_case_insensitively_and_new_keys_are_lower_cased() -> None:
    text = "version: 0.1\nstorage:\n  s3:\n    bucket: file\n"
    cfg = load(text, env={"REGISTRY_STORAGE_S3_BUCKET": "env", "REGISTRY_STORAGE_S3_REGION": "us-east-1"})
    assert cfg.driver.name == "s3"
    assert cfg.driver.parameters == {"bucket": "env", "region": "us-east-1"}


def test_registry_storage_replaces_the_storage_section_in_lexical_order() -> None:
    text = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n"
    cfg = load(
        text,
        env={
            "REGISTRY_STORAGE": "s3",
            "REGISTRY_STORAGE_S3_BUCKET": "b",
            "REGISTRY_STORAGE_S3_REGION": "us-east-1",
        },
    )
    assert cfg.driver.name == "s3" and dict(cfg.driver.parameters) == {"bucket": "b", "region": "us-east-1"}


def test_registry_env_without_a_file_configures_everything() -> None:
    cfg = load(
        text=None,
        env={
            "REGISTRY_STORAGE_S3_BUCKET": "b",
            "REGISTRY_STORAGE_S3_REGION": "us-east-1",
            "REGISTRY_MIDDLEWARE_STORAGE_0_NAME": "cloudfront",
            "REGISTRY_MIDDLEWARE_STORAGE_0_OPTIONS_BASEURL": "https://env/",
            "REGISTRY_HTTP_SECRET": "ignored",
        },
    )
    assert cfg.driver.parameters == {"bucket": "b", "region": "us-east-1"}
    assert [(m.name, dict(m.options)) for m in cfg.middleware] == [
        ("cloudfront", {"baseurl": "https://env/"})
    ]


def test_middleware_env_overrides_an_entry_of_the_file() -> None:
    cfg = load(env={"REGISTRY_MIDDLEWARE_STORAGE_0_OPTIONS_KEYPAIRID": "KENV"})
    assert cfg.middleware[0].options["keypairid"] == "KENV"
    assert cfg.middleware[0].options["baseurl"] == "https://d1.cloudfront.net/"
    assert (
        cfg.middleware[0].sources["keypairid"]
        == "environment variable REGISTRY_MIDDLEWARE_STORAGE_0_OPTIONS_KEYPAIRID"
    )


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"REGISTRY_MIDDLEWARE_STORAGE_5_NAME": "cloudfront"}, "undefined index 5 (the list has 1 entries)"),
        ({"REGISTRY_MIDDLEWARE_STORAGE_X_NAME": "cloudfront"}, "non-numeric index 'X'"),
        ({"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/x"}, "multiple storage drivers"),
        ({"REGISTRY_STORAGE_S3_CHUNKSIZE": "[1"}, "REGISTRY_STORAGE_S3_CHUNKSIZE: invalid YAML"),
        ({"REGISTRY_STORAGE_S3_BUCKET_NAME": "x"}, "storage.s3.bucket is a string, so name cannot be set"),
    ],
)
def test_bad_registry_env_is_a_one_line_error_naming_the_variable(env: dict[str, str], expected: str) -> None:
    exc = error_of(env=env)
    assert expected in str(exc)
    assert str(exc).startswith(
        f"environment variable {next(iter(env))}"
    ) or "multiple storage drivers" in str(exc)


def test_unknown_s3regfs_env_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = load(env={"S3REGFS_NOSUCH": "1", "S3REGFS_TEST_BUCKET": "x", "S3REGFS_READ_ONLY": "true"})
    assert cfg.fs.read_only is True
    assert "S3REGFS_NOSUCH ignored" in caplog.text and "S3REGFS_TEST_BUCKET" not in caplog.text


# -- -o options ------------------------------------------------------------------------


def test_o_options_sort_into_driver_mount_fuse_cloudfront_and_ignored() -> None:
    cfg = load(
        text=None,
        options=[
            "bucket=b,region=us-east-1,regionendpoint=http://127.0.0.1:9000,forcepathstyle=true,secure=false",
            "ro,allow_other,uid=root,gid=0,file_mode=640,dir_mode=0o750,metadata_ttl=1m30s,cache_dir=/tmp/c",
            "_netdev,nofail,noauto,auto,user,users,defaults,x-systemd.automount,x-systemd.idle-timeout=60,comment=x",
            "nosuid,nodev,noexec,fsname=registry,cloudfront.baseurl=https://cf/,cloudfront.duration=1h",
            "data_cache_size=2GiB,readahead_max=32M,immutable_prefixes=/a/:/b/",
        ],
    )
    assert cfg.driver.parameters == {
        "bucket": "b",
        "region": "us-east-1",
        "regionendpoint": "http://127.0.0.1:9000",
        "forcepathstyle": "true",
        "secure": "false",
    }
    fs = cfg.fs
    assert (fs.read_only, fs.uid, fs.gid, fs.file_mode, fs.dir_mode) == (True, 0, 0, 0o640, 0o750)
    assert fs.metadata_ttl == 90.0 and fs.cache_dir == "/tmp/c"
    assert fs.data_cache_size == 2 << 30 and fs.readahead_max == 32 << 20
    assert fs.immutable_prefixes == ("/a/", "/b/")
    assert cfg.mount.allow_other is True
    assert cfg.mount.fuse_kwargs() == {"nosuid": True, "nodev": True, "noexec": True, "fsname": "registry"}
    assert [(m.name, dict(m.options)) for m in cfg.middleware] == [
        ("cloudfront", {"baseurl": "https://cf/", "duration": "1h"})
    ]


def test_cloudfront_o_option_changes_the_first_entry_of_the_file() -> None:
    cfg = load(options=["cloudfront.keypairid=KOPT"])
    assert len(cfg.middleware) == 1
    assert cfg.middleware[0].options["keypairid"] == "KOPT"
    assert cfg.middleware[0].options["baseurl"] == "https://d1.cloudfront.net/"


def test_a_secret_on_the_command_line_works_but_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = load(text=None, options=["bucket=b,region=us-east-1,accesskey=AK,secretkey=cmdline-secret-1"])
    assert cfg.driver.parameters["secretkey"] == "cmdline-secret-1"
    assert "visible in ps" in caplog.text and "cmdline-secret-1" not in caplog.text


@pytest.mark.parametrize(
    "option, expected",
    [
        ("file_mode=0844", "-o file_mode: file_mode=0844: not an octal mode; use e.g. 0644"),
        ("dir_mode=17777", "-o dir_mode: dir_mode=17777: not a permission mode"),
        ("uid=nosuchuser", "-o uid: uid=nosuchuser: no such user"),
        ("gid=-1", "-o gid: gid=-1: must be between 0 and"),
        ("metadata_ttl=5d", "-o metadata_ttl: metadata_ttl=5d: not a duration"),
        ("metadata_ttl=-5", "-o metadata_ttl: metadata_ttl=-5: must not be negative"),
        ("negative_ttl=nan", "-o negative_ttl: negative_ttl=nan: not a duration"),
        ("data_cache_size=lots", "-o data_cache_size: data_cache_size=lots: not a size"),
        ("readahead_min=1", "-o readahead_min: readahead_min=1: must be at least 4096 bytes"),
        ("readahead_min=128M", "readahead_min (134217728) is larger than readahead_max"),
        ("read_parallelism=0", "-o read_parallelism: read_parallelism=0: must be between 1 and 256"),
        ("read_only=maybe", "-o read_only: read_only=maybe: not a boolean"),
        ("log_level=loud", "-o log_level: log_level=loud: not a log level"),
        ("cache_dir=relative/dir", "-o cache_dir: cache_dir=relative/dir: must be an absolute path"),
        (
            "immutable_prefixes=blobs",
            "-o immutable_prefixes: immutable_prefixes=blobs: 'blobs' must start and end",
        ),
        ("url_duration=0", "-o url_duration: url_duration=0: must be more than 0 seconds"),
        ("ro=yes", "-o ro=yes: ro takes no value"),
        ("nosuid=1", "-o nosuid=1: nosuid takes no value"),
        ("metadata_ttl", "-o metadata_ttl: needs a value"),
        ("fsname", "-o fsname: needs a value"),
        ("cloudfront.=x", "-o cloudfront.: needs an option name and a value"),
        ("frobnicate", "-o frobnicate: unknown option, or a driver parameter without a value"),
    ],
)
def test_every_invalid_o_value_is_one_line_naming_option_and_fix(option: str, expected: str) -> None:
    exc = error_of(text=None, options=[option])
    assert expected in str(exc)
    assert exc.exit_code == exitcodes.CONFIG


@pytest.mark.parametrize(
    "source, kwargs, expected",
    [
        (
            "file",
            {"text": "version: 0.1\ns3regfs:\n  file_mode: rw\n"},
            "config file <text> (s3regfs.file_mode): file_mode=rw",
        ),
        (
            "env",
            {"text": None, "env": {"S3REGFS_UID": "x y"}},
            "environment variable S3REGFS_UID: uid=x y: no such user",
        ),
        (
            "file",
            {"text": "version: 0.1\ns3regfs:\n  metadata_ttl: true\n"},
            "(s3regfs.metadata_ttl): metadata_ttl=True",
        ),
    ],
)
def test_invalid_mount_options_name_their_source(source: str, kwargs: dict[str, Any], expected: str) -> None:
    assert expected in str(error_of(**kwargs))


# -- driver parameters: validated at load, errors name the source ----------------------


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (
            {"options": ["chunksize=5"]},
            "-o chunksize: the chunksize 5 parameter should be a number between 5242880",
        ),
        (
            {"env": {"REGISTRY_STORAGE_S3_SECURE": "sometimes"}},
            "environment variable REGISTRY_STORAGE_S3_SECURE: the secure parameter should be a boolean",
        ),
        (
            {"text": REGISTRY_YML.replace("chunksize: 10485760", "chunksize: 1")},
            "config file <text> (storage.s3.chunksize): the chunksize 1 parameter",
        ),
        (
            {"text": REGISTRY_YML.replace("region: eu-west-1", "region: mars-1")},
            "(storage.s3.region): invalid region provided: mars-1",
        ),
        (
            {"text": "version: 0.1\nstorage: {s3: {region: us-east-1}}\n"},
            (
                "no bucket parameter provided; set it in the config file (storage.s3.bucket), the environment "
                "(REGISTRY_STORAGE_S3_BUCKET) or with -o bucket=VALUE"
            ),
        ),
    ],
)
def test_driver_parameter_errors_name_the_source(kwargs: dict[str, Any], expected: str) -> None:
    exc = error_of(**kwargs)
    assert expected in str(exc)


# -- secrets ---------------------------------------------------------------------------


def test_secrets_never_appear_in_repr_and_are_redacted_from_logs(caplog: pytest.LogCaptureFixture) -> None:
    cfg = load(env={"AWS_SESSION_TOKEN": "session-token-value"})
    assert "file-secret-value" not in repr(cfg) and "AKIAFILEKEY" not in repr(cfg)
    assert "file-secret-value" not in str(cfg)
    assert logs.redact("key=file-secret-value token=session-token-value") == "key=*** token=***"


def test_redacting_filter_covers_messages_arguments_and_tracebacks() -> None:
    import io

    stream = io.StringIO()
    logs.add_secret("hunter2-secret")
    logs.setup_logging("debug", stream=stream)
    try:
        logger = logging.getLogger("s3regfs.test")
        logger.info("value %s", "hunter2-secret")
        try:
            raise RuntimeError("boom hunter2-secret")
        except RuntimeError:
            logger.exception("failed with %r", {"k": "hunter2-secret"})
    finally:
        logs.setup_logging("warning")
    text = stream.getvalue()
    assert "hunter2-secret" not in text
    assert "INFO s3regfs.test: value ***" in text and "RuntimeError: boom ***" in text


# -- fuzz: never a traceback -----------------------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=12)
)
_keys = st.sampled_from(
    [
        "version",
        "storage",
        "s3",
        "s3aws",
        "middleware",
        "name",
        "options",
        "s3regfs",
        "bucket",
        "region",
        "chunksize",
        "secure",
        "file_mode",
        "uid",
        "metadata_ttl",
        "cloudfront",
        "0",
        "baseurl",
        "readahead_min",
        "immutable_prefixes",
        "delete",
        "filesystem",
    ]
) | st.text(max_size=6)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=12,
)
_env_names = st.sampled_from(
    [
        "REGISTRY_STORAGE",
        "REGISTRY_STORAGE_S3_BUCKET",
        "REGISTRY_STORAGE_S3_CHUNKSIZE",
        "REGISTRY_STORAGE_S3_REGION",
        "REGISTRY_MIDDLEWARE_STORAGE_0_NAME",
        "REGISTRY_MIDDLEWARE_STORAGE_0_OPTIONS_BASEURL",
        "REGISTRY_MIDDLEWARE_STORAGE_1_NAME",
        "REGISTRY_STORAGE_FILESYSTEM",
        "REGISTRY_MIDDLEWARE_STORAGE",
        "S3REGFS_UID",
        "S3REGFS_FILE_MODE",
        "S3REGFS_METADATA_TTL",
        "REGISTRY_STORAGE_S3_SECURE",
    ]
)
_o_items = st.sampled_from(
    [
        "ro",
        "rw",
        "bucket=b",
        "region=us-east-1",
        "uid=",
        "file_mode=",
        "cloudfront.",
        "metadata_ttl=",
        "x-systemd.automount",
        "nosuid",
        "chunksize=",
        "=",
        ",",
        "fsname=",
    ]
).flatmap(lambda prefix: st.text(max_size=6).map(lambda tail: prefix + tail))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    document=st.dictionaries(_keys, _values, max_size=5),
    with_version=st.booleans(),
    env=st.dictionaries(_env_names, st.text(max_size=10), max_size=3),
    options=st.lists(_o_items, max_size=4),
    driver=st.sampled_from([None, "s3", "inmemory"]),
)
def test_fuzz_the_loader_never_raises_anything_but_user_error(
    document: dict[str, Any], with_version: bool, env: dict[str, str], options: list[str], driver: str | None
) -> None:
    if with_version:
        document["version"] = 0.1
    try:
        text = yaml.safe_dump(document)
    except yaml.YAMLError:
        return
    try:
        cfg = config.load(text=text, environ=env, options=options, driver=driver)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    assert isinstance(cfg, config.Config)
    assert cfg.driver.name in config.CLI_DRIVERS


# -- mount options the s3 driver applies ------------------------------------------------

S3_ENV = {"REGISTRY_STORAGE_S3_ACCESSKEY": "AKIATEST", "REGISTRY_STORAGE_S3_SECRETKEY": "test-secret-value"}
S3_O = "bucket=b,region=us-east-1,regionendpoint=http://127.0.0.1:9,forcepathstyle=true"


def parts_in_flight(cfg: config.Config) -> int:
    """The ``partsinflight`` of the s3 driver that build_driver makes (no request is sent)."""
    driver = config.build_driver(cfg)
    try:
        return int(driver.inner.params.partsinflight)
    finally:
        driver.close()


@pytest.mark.parametrize(
    ("source", "options", "env", "text"),
    [
        ("-o", [S3_O, "write_parts_in_flight=2"], {}, None),
        ("environment", [S3_O], {"S3REGFS_WRITE_PARTS_IN_FLIGHT": "2"}, None),
        ("file", [S3_O], {}, "version: 0.1\ns3regfs:\n  write_parts_in_flight: 2\n"),
    ],
)
def test_write_parts_in_flight_reaches_the_s3_driver(
    source: str, options: list[str], env: dict[str, str], text: str | None
) -> None:
    cfg = load(text=text, options=options, env={**S3_ENV, **env})
    assert cfg.fs.write_parts_in_flight == 2
    assert parts_in_flight(cfg) == 2, source


def test_unset_write_parts_in_flight_leaves_partsinflight_to_the_driver() -> None:
    assert parts_in_flight(load(text=None, options=[S3_O], env=S3_ENV)) == 4  # the s3 default
    cfg = load(text=None, options=[S3_O, "partsinflight=3"], env=S3_ENV)
    assert config.driver_parameters(cfg) == dict(cfg.driver.parameters)
    assert parts_in_flight(cfg) == 3


def test_write_parts_in_flight_replaces_partsinflight(caplog: pytest.LogCaptureFixture) -> None:
    cfg = load(text=None, options=[S3_O, "partsinflight=3", "write_parts_in_flight=6"], env=S3_ENV)
    with caplog.at_level(logging.INFO, logger="s3regfs.config"):
        assert parts_in_flight(cfg) == 6
    assert "-o write_parts_in_flight: write_parts_in_flight=6 replaces the s3 parameter partsinflight=3 of " \
        "-o partsinflight" in caplog.text


def test_write_parts_in_flight_is_no_parameter_of_other_drivers() -> None:
    cfg = load(text=None, options=["write_parts_in_flight=2"], driver="inmemory")
    assert config.driver_parameters(cfg) == {}
    config.build_driver(cfg).close()


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80))
def test_fuzz_raw_text_never_raises_anything_but_user_error(text: str) -> None:
    try:
        config.load(text=text, environ={})
    except UserError as exc:
        assert "\n" not in str(exc)


def test_every_option_in_the_table_parses_its_documented_default() -> None:
    for option in MOUNT_OPTIONS.values():
        if option.default.startswith(("the mounting", "/var/cache")):
            continue
        option.parse(option.default)


def test_the_credential_variables_are_the_secret_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a background mount sends its daemon child by pipe, and a mount drops once its driver is built."""
    secret = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
              "REGISTRY_STORAGE_S3_SECRETKEY", "REGISTRY_STORAGE_S3_ACCESSKEY",
              "REGISTRY_STORAGE_S3AWS_SECRETKEY", "REGISTRY_STORAGE_s3_secretkey",
              "REGISTRY_STORAGE_S3_SESSIONTOKEN"]
    plain = ["AWS_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE", "REGISTRY_STORAGE_S3_BUCKET", "REGISTRY_STORAGE",
             "S3REGFS_METADATA_TTL", "REGISTRY_MIDDLEWARE_STORAGE_0_OPTIONS_PRIVATEKEY", "PATH", "SECRETKEY"]
    for name in secret + plain:
        monkeypatch.setenv(name, f"value-of-{name}")
    assert sorted(config.secret_environ()) == sorted(secret)
    config.drop_secret_environ()
    assert not [name for name in secret if name in os.environ]
    assert all(os.environ[name] == f"value-of-{name}" for name in plain)


@pytest.mark.parametrize("option", ["uid", "gid"])
def test_a_user_or_group_name_with_a_nul_byte_is_one_line(option: str) -> None:
    """Found by the loader fuzz: ``S3REGFS_UID=\\x00`` made pwd raise ValueError past the option parser."""
    message = str(error_of(env={f"S3REGFS_{option.upper()}": "a\x00b"}))
    assert f"S3REGFS_{option.upper()}" in message and ("no such user" in message or "no such group" in message)
