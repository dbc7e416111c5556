"""The vendored front-end assets (dev.py setup): pinned, integrity-checked, complete, and rebuilt when tampered with."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import ensure_vendor, ensure_vendor_test, load_dev


@pytest.fixture(scope="module")
def dev():
    ensure_vendor()
    return load_dev()


def test_lock_pins_exact_versions_with_two_digests(dev) -> None:
    entries = dev._read_vendor_lock()
    assert {dev._package_name(spec) for spec, _, _ in entries} == set(dev.VENDOR_FILES)
    for spec, sha256, integrity in entries:
        assert re.fullmatch(r"(@[\w.-]+/)?[\w.-]+@\d+\.\d+\.\d+", spec), spec
        assert re.fullmatch(r"[0-9a-f]{64}", sha256)
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", integrity)


def test_vendor_tree_has_what_the_site_needs(dev) -> None:
    vendor = dev.VENDOR
    for name in ("ipywidgets/embed.js", "ipywidgets/widgets-shim.js", "mathjax/tex-mml-chtml.js",
                 "mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff", "uplot/uPlot.iife.min.js",
                 "uplot/uPlot.min.css"):
        assert (vendor / name).is_file(), name
    assert len(list((vendor / "ipywidgets").glob("*.woff2"))) == 3
    assert "Hub" in (vendor / "ipywidgets" / "widgets-shim.js").read_text()
    assert dev._vendor_is_current()
    assert not (dev.ROOT / "_static").exists()


def test_a_changed_file_is_detected(dev, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "_vendor"
    shutil.copytree(dev.VENDOR, copy)
    monkeypatch.setattr(dev, "VENDOR", copy)
    assert dev._vendor_is_current()
    embed = copy / "ipywidgets" / "embed.js"
    embed.write_bytes(embed.read_bytes() + b"\n// tampered")
    assert not dev._vendor_is_current()
    (copy / "vendor-manifest.json").unlink()
    assert not dev._vendor_is_current()


def test_wrong_digest_refuses_to_vendor(dev, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("npm") is None:
        pytest.fail("npm is needed to vendor the front-end assets")
    lock = tmp_path / "vendor.lock"
    text = dev.VENDOR_LOCK.read_text()
    lock.write_text(re.sub(r"sha256=[0-9a-f]{4}", "sha256=0000", text, count=1))
    monkeypatch.setattr(dev, "VENDOR_LOCK", lock)
    monkeypatch.setattr(dev, "VENDOR", tmp_path / "_vendor")
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match="integrity check failed"):
        dev.vendor(force=True)
    assert not (tmp_path / "_vendor").exists()
    assert not list(tmp_path.glob("_vendor.tmp-*")), "the partial tree was not cleaned up"


def test_missing_npm_is_a_clear_error(dev, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dev, "VENDOR", tmp_path / "_vendor")
    monkeypatch.setattr(dev.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="npm was not found"):
        dev.vendor()


def test_test_only_assets_are_pinned_checked_and_not_served(dev) -> None:
    """axe-core (the accessibility checks) is vendored like the site's assets, into a folder the site never serves."""
    folder = ensure_vendor_test()
    entries = dev._read_vendor_lock("test")
    assert [dev._package_name(spec) for spec, _, _ in entries] == ["axe-core"] == list(dev.VENDOR_TEST_FILES)
    for spec, sha256, integrity in entries:
        assert re.fullmatch(r"axe-core@\d+\.\d+\.\d+", spec), spec
        assert re.fullmatch(r"[0-9a-f]{64}", sha256) and re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", integrity)
    assert (folder / "axe-core" / "axe.min.js").stat().st_size > 100_000
    assert dev._vendor_is_current("test")
    config = (dev.ROOT / "_config.yml").read_text()
    assert 'html_static_path: ["_vendor"]' in config and "_vendor_test/*" in config


def test_wrong_digest_refuses_to_vendor_test_assets(dev, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("npm") is None:
        pytest.fail("npm is needed to vendor the front-end assets")
    lock = tmp_path / "vendor-test.lock"
    lock.write_text(re.sub(r"sha512-[A-Za-z]", "sha512-A", dev.VENDOR_TEST_LOCK.read_text(), count=1))
    monkeypatch.setattr(dev, "VENDOR_TEST_LOCK", lock)
    monkeypatch.setattr(dev, "VENDOR_TEST", tmp_path / "_vendor_test")
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match="integrity check failed"):
        dev.vendor(force=True, kind="test")
    assert not (tmp_path / "_vendor_test").exists()
