"""The ``metrics`` mount option and ``s3regfs status`` without a mount (docs/CONFIGURATION.md, docs/OPERATIONS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s3regfs import cli, config, exitcodes, status
from s3regfs.config.options import OptionValueError, parse_optional_address, split_address
from s3regfs.driver.observe import Request, RequestCounts, outcome


@pytest.mark.parametrize(
    ("given", "expected"),
    [("127.0.0.1:9464", "127.0.0.1:9464"), ("[::1]:9464", "[::1]:9464"), ("localhost:80", "localhost:80"),
     ("none", None), ("", None)],
)
def test_metrics_takes_host_and_port_or_none(given: str, expected: str | None) -> None:
    assert parse_optional_address(given) == expected


@pytest.mark.parametrize("given", ["9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":9464", "host:port"])
def test_metrics_refuses_what_is_not_an_address(given: str) -> None:
    with pytest.raises(OptionValueError, match="HOST:PORT"):
        parse_optional_address(given)


def test_metrics_is_a_mount_option_of_o_and_the_config_file(tmp_path: Path) -> None:
    assert config.load(None, options=["metrics=127.0.0.1:9464"], driver="inmemory").mount.metrics == "127.0.0.1:9464"
    assert config.load(None, options=[], driver="inmemory").mount.metrics is None
    (tmp_path / "config.yml").write_text(
        "version: 0.1\nstorage:\n  s3: {bucket: b, region: us-east-1}\ns3regfs:\n  metrics: '[::1]:9100'\n"
    )
    assert config.load(str(tmp_path / "config.yml"), options=[], driver=None).mount.metrics == "[::1]:9100"
    assert split_address("[::1]:9100") == ("::1", 9100)


def test_a_bad_metrics_address_is_one_line_with_the_config_code(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["check", "--driver", "inmemory", "-o", "metrics=nowhere"])
    out = capsys.readouterr().out
    assert code == exitcodes.CONFIG and "metrics" in out and "HOST:PORT" in out


def test_status_of_a_path_that_is_no_mount_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status", str(tmp_path)]) == exitcodes.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not the root of an s3regfs mount" in err
    assert cli.main(["status", str(tmp_path / "missing")]) == exitcodes.USAGE
    assert "no such file or directory" in capsys.readouterr().err


def test_the_status_document_hides_secrets_and_fits_an_xattr() -> None:
    cfg = config.load(None, options=["bucket=b", "region=us-east-1", "accesskey=AKIDEXAMPLE",
                                     "secretkey=wJalrXUtnFEMI-very-secret"], driver="s3")
    counts = RequestCounts()
    counts.request_done(Request("PutObject", outcome(200), 0.1, sent=5))
    counts.request_done(Request("PutObject", outcome(403), 0.1))
    many = [{"path": "/" + "x" * 1000 + str(i), "size": 1} for i in range(500)]
    snapshot = {"open_files": 500, "uploads": {"pending": many, "in_flight": [], "committed": 0, "failed": 0,
                                               "recent_failures": [], "lost": []}}
    reporter = status.Reporter("/mnt", lambda: dict(snapshot, uploads=dict(snapshot["uploads"])),
                               config=status.settings(cfg), requests=counts)
    data = reporter.render()
    assert len(data) <= status.XATTR_BUDGET and b"very-secret" not in data and b"AKIDEXAMPLE" not in data
    doc = json.loads(data)
    assert doc["uploads"]["pending_count"] == 500 and 0 < len(doc["uploads"]["pending"]) <= status.LIST_MAX
    assert doc["requests"]["by_operation"] == {"PutObject": {"denied": 1, "ok": 1}}
    assert doc["config"]["options"]["file_mode"] == "0644"
    text = status.format_text(doc)
    assert "500 pending" in text and "PutObject denied 1 ok 1" in text and "very-secret" not in text
