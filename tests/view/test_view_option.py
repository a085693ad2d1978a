"""``view=oci`` as a mount option: where it can be set, what it implies, its one-line errors."""

from __future__ import annotations

import textwrap

import pytest

from s3regfs import config, exitcodes
from s3regfs.errors import UserError
from s3regfs.view.oci import OciView


def test_view_oci_from_o_or_the_registry_file_makes_a_read_only_oci_view() -> None:
    from_o = config.load(environ={}, options=["view=oci"], driver="inmemory")
    text = textwrap.dedent("""\
        version: 0.1
        storage:
          inmemory: {}
        s3regfs:
          view: oci
        """)
    from_file = config.load(text=text, environ={}, driver="inmemory")
    for cfg in (from_o, from_file):
        assert cfg.mount.view == "oci" and cfg.fs.read_only and cfg.fs.immutable_prefixes == ("/",)
        assert cfg.fs.listing_walk_ahead == 0
        driver = config.build_driver(cfg)
        try:
            assert isinstance(driver, OciView) and driver.ttl == cfg.fs.metadata_ttl
        finally:
            driver.close()
    raw = config.load(environ={}, options=[], driver="inmemory")
    assert raw.mount.view == "raw" and not raw.fs.read_only
    driver = config.build_driver(raw)
    assert not isinstance(driver, OciView)
    driver.close()


@pytest.mark.parametrize("options, words", [
    (["view=oci,rw"], ["-o rw", "read-only", "drop rw"]),
    (["view=tree"], ["view", "raw or oci"]),
])
def test_a_bad_view_is_one_line_naming_the_fix(options: list[str], words: list[str]) -> None:
    with pytest.raises(UserError) as info:
        config.load(environ={}, options=options, driver="inmemory")
    message = str(info.value)
    assert "\n" not in message and all(word in message for word in words), message
    assert info.value.exit_code in (exitcodes.USAGE, exitcodes.CONFIG)
