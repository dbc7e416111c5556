"""Where pnc finds Fashion-MNIST: the data folder, then the Debian package's folder, then a verified download.

Tiny data sets in the original gzipped IDX format stand in for the real files: the "upstream" ``.gz`` files are
served at file:// URLs, and the "Debian" copies are the same IDX content compressed again with another gzip header
(as Debian's ``dataset-fashion-mnist`` is), so only the pinned decompressed-content SHA-256 can verify them.
"""

from __future__ import annotations

import gzip
import hashlib
import logging

import numpy as np
import pytest
from test_download import _idx, _remote  # tests/ is on sys.path (rootdir conftest)

import pnc.download as dl
from pnc.download import DownloadError, RemoteFile

NAMES = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
         "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}


@pytest.fixture
def tiny_fashion(tmp_path, monkeypatch):
    """A 20 + 10 image Fashion-MNIST: upstream .gz files at file:// URLs, a re-compressed 'Debian' copy."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(20, dtype=np.uint8) % 10,
        "test_images": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "test_labels": np.arange(10, dtype=np.uint8),
    }
    files, system = {}, tmp_path / "usr-share-datasets-fashion-mnist"
    system.mkdir()
    for role, array in arrays.items():
        raw = _idx(array)
        upstream = gzip.compress(raw, mtime=0)
        remote = _remote(tmp_path, NAMES[role], upstream)
        files[role] = RemoteFile(remote.name, remote.sha256, remote.size, remote.urls,
                                 content_sha256=hashlib.sha256(raw).hexdigest())
        repacked = gzip.compress(raw, compresslevel=1, mtime=12345)  # other header and deflate stream
        assert repacked != upstream
        (system / NAMES[role]).write_bytes(repacked)
    monkeypatch.setitem(dl.DATASET_FILES, "fashion_mnist", files)
    monkeypatch.setitem(dl.SYSTEM_FOLDERS, "fashion_mnist", (system,))
    dl._VERIFIED.clear()
    return arrays, system, tmp_path / "data"


def test_the_system_package_is_used_when_the_data_folder_is_empty(tiny_fashion, caplog) -> None:
    arrays, system, data = tiny_fashion
    source = dl.locate("fashion_mnist", root=data, download=False)
    assert source.origin == "system package" and source.folder == system
    assert "dataset-fashion-mnist package" in source.describe()
    with caplog.at_level(logging.INFO, logger="pnc.download"):
        x, y = dl.load("fashion_mnist", "test", root=data, download=False, normalize=False)
    assert "dataset-fashion-mnist" in caplog.text
    np.testing.assert_array_equal(y.numpy(), arrays["test_labels"])
    np.testing.assert_allclose(x.numpy().reshape(10, 28, 28) * 255, arrays["test_images"], atol=1e-4)
    assert not data.exists()  # nothing was copied or downloaded


def test_the_data_folder_comes_first_even_with_recompressed_files(tiny_fashion) -> None:
    _, system, data = tiny_fashion
    (data / "fashion_mnist").mkdir(parents=True)
    for name in NAMES.values():
        (data / "fashion_mnist" / name).write_bytes((system / name).read_bytes())
    source = dl.locate("fashion_mnist", root=data, download=False)
    assert source.origin == "data folder" and source.folder == data / "fashion_mnist"


def test_a_download_when_no_local_copy_exists(tiny_fashion, monkeypatch) -> None:
    arrays, _, data = tiny_fashion
    monkeypatch.setitem(dl.SYSTEM_FOLDERS, "fashion_mnist", ())
    source = dl.locate("fashion_mnist", root=data)
    assert source.origin == "download"
    assert sorted(p.name for p in (data / "fashion_mnist").iterdir()) == sorted(NAMES.values())
    _, y = dl.load("fashion_mnist", "train", root=data)
    np.testing.assert_array_equal(y.numpy(), arrays["train_labels"])
    assert dl.locate("fashion_mnist", root=data, download=False).origin == "data folder"


def test_a_corrupt_local_copy_is_never_used(tiny_fashion) -> None:
    arrays, system, data = tiny_fashion
    folder = data / "fashion_mnist"
    folder.mkdir(parents=True)
    for name in NAMES.values():
        (folder / name).write_bytes((system / name).read_bytes())
    broken = bytearray(gzip.decompress((folder / NAMES["train_labels"]).read_bytes()))
    broken[-1] ^= 1  # one label changed: still valid gzip and IDX, wrong content
    (folder / NAMES["train_labels"]).write_bytes(gzip.compress(bytes(broken)))
    source = dl.locate("fashion_mnist", root=data, download=False)
    assert source.origin == "system package"  # the corrupt data folder was skipped ...
    assert any("train-labels" in s and "checksum" in s for s in source.skipped)  # ... and said so
    (system / NAMES["test_images"]).write_bytes(b"not gzip at all")
    with pytest.raises(DownloadError, match="Found but not used") as err:
        dl.locate("fashion_mnist", root=data, download=False)
    assert "apt-get install dataset-fashion-mnist" in str(err.value)
    fresh = dl.locate("fashion_mnist", root=data)  # with downloads allowed the corrupt file is replaced
    assert fresh.origin == "download"
    _, y = dl.load("fashion_mnist", "train", root=data, download=False)
    np.testing.assert_array_equal(y.numpy(), arrays["train_labels"])


def test_offline_and_no_copy_says_how_to_get_one(tiny_fashion, monkeypatch) -> None:
    _, _, data = tiny_fashion
    monkeypatch.setitem(dl.SYSTEM_FOLDERS, "fashion_mnist", ())
    offline = {role: RemoteFile(f.name, f.sha256, f.size, ("http://127.0.0.1:9/nothing",), f.content_sha256)
               for role, f in dl.DATASET_FILES["fashion_mnist"].items()}
    monkeypatch.setitem(dl.DATASET_FILES, "fashion_mnist", offline)
    with pytest.raises(DownloadError, match="could not download") as err:
        dl.locate("fashion_mnist", root=data, retries=1, backoff=0.0, timeout=2.0)
    assert "apt-get install dataset-fashion-mnist" in str(err.value)


def test_the_pinned_content_hashes_are_those_of_the_real_files() -> None:
    """Checked against the Debian package, which ``python3 dev.py test`` installs (the book needs it too)."""
    folder = dl.SYSTEM_FOLDERS["fashion_mnist"][0]
    assert folder.exists(), f"{folder} is missing: apt-get install dataset-fashion-mnist (python3 dev.py test does)"
    source = dl.locate("fashion_mnist", root=folder.parent / "no-such-data-folder", download=False)
    assert source.origin == "system package"
