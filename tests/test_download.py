"""Tests for pnc.download without the network: tiny files in the original formats, served locally."""

import functools
import gzip
import hashlib
import http.server
import io
import struct
import tarfile
import threading
import urllib.error

import numpy as np
import pytest
import torch

import pnc.download as dl
from pnc.download import ChecksumError, DownloadError, RemoteFile


def _idx(array: np.ndarray, code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    return header + array.astype(dtype).tobytes()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _remote(tmp_path, name: str, data: bytes, sha: str | None = None, extra_urls=()) -> RemoteFile:
    src = tmp_path / "server" / name
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(data)
    return RemoteFile(name, sha or _sha(data), len(data), (*extra_urls, src.as_uri()))


def _files_in(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A 12-image training set and a 6-image test set in MNIST's gzipped IDX format, at file:// URLs."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(12, dtype=np.uint8) % 10,
        "test_images": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "test_labels": np.arange(6, dtype=np.uint8),
    }
    names = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
             "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}
    files = {role: _remote(tmp_path, names[role], gzip.compress(_idx(a))) for role, a in arrays.items()}
    monkeypatch.setitem(dl.DATASET_FILES, "mnist", files)
    return arrays


def _cifar_archive(n_train_per_batch=3, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    expected = {}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        members = [(f"data_batch_{i}.bin", n_train_per_batch) for i in range(1, 6)] + [("test_batch.bin", n_test)]
        for fname, n in members:
            labels = rng.integers(0, 10, n, dtype=np.uint8)
            pixels = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
            expected[fname] = (labels, pixels)
            data = np.concatenate([labels[:, None], pixels], axis=1).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{fname}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        meta = b"airplane\nautomobile\n"
        info = tarfile.TarInfo("cifar-10-batches-bin/batches.meta.txt")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
    return buf.getvalue(), expected


# ----------------------------------------------------------------------------------------------- readers


@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_read_idx_all_types_plain_and_gzip(code):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(np.float64)
    if code == 0x08:
        a = np.abs(a)
    raw = _idx(a, code)
    for data in (raw, gzip.compress(raw)):
        out = dl.read_idx(data)
        assert out.shape == (2, 3, 4) and np.array_equal(out, a) and out.dtype.isnative


def test_read_idx_from_path(tmp_path):
    p = tmp_path / "x.idx.gz"
    p.write_bytes(gzip.compress(_idx(np.arange(5, dtype=np.uint8))))
    assert np.array_equal(dl.read_idx(p), np.arange(5))


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x00", "magic"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "magic"),
        (b"\x00\x00\x08\x02\x00\x00", "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x00\x01", "does not match shape"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt gzip"),
    ],
)
def test_read_idx_rejects_malformed_files(data, match):
    with pytest.raises(ValueError, match=match):
        dl.read_idx(data)


def test_read_cifar10_binary_decodes_records_and_channel_order(tmp_path):
    data, expected = _cifar_archive()
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(data)
    images, labels = dl.read_cifar10_binary(archive, "train")
    assert images.shape == (15, 3, 32, 32) and images.dtype == np.uint8 and labels.dtype == np.int64
    first_labels, first_pixels = expected["data_batch_1.bin"]
    assert np.array_equal(labels[:3], first_labels)
    assert np.array_equal(images[0, 0].ravel(), first_pixels[0, :1024])  # red plane first
    assert np.array_equal(images[0, 2].ravel(), first_pixels[0, 2048:])  # blue plane last
    last_labels, _ = expected["data_batch_5.bin"]
    assert np.array_equal(labels[-3:], last_labels)
    t_images, t_labels = dl.read_cifar10_binary(archive, "test")
    assert t_images.shape == (4, 3, 32, 32) and np.array_equal(t_labels, expected["test_batch.bin"][0])


def test_read_cifar10_binary_rejects_bad_archives(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tar")
    with pytest.raises(ValueError, match="corrupt CIFAR-10 archive"):
        dl.read_cifar10_binary(bad)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        info.size = 100  # not a whole record
        tar.addfile(info, io.BytesIO(b"\x00" * 100))
    partial = tmp_path / "partial.tar.gz"
    partial.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="3073-byte records"):
        dl.read_cifar10_binary(partial, "test")
    with pytest.raises(ValueError, match="no member"):
        dl.read_cifar10_binary(partial, "train")
    with pytest.raises(ValueError, match="split"):
        dl.read_cifar10_binary(partial, "valid")


# ---------------------------------------------------------------------------------------------- fetching


def test_fetch_downloads_verifies_and_reuses(tmp_path):
    f = _remote(tmp_path, "a.bin", b"hello world")
    dest = dl.fetch(f, tmp_path / "data")
    assert dest.read_bytes() == b"hello world" and _files_in(tmp_path / "data") == ["a.bin"]
    (tmp_path / "server" / "a.bin").unlink()  # the second call must not need the network
    assert dl.fetch(f, tmp_path / "data") == dest


def test_fetch_over_local_http_server(tmp_path):
    served = tmp_path / "srv"
    served.mkdir()
    payload = bytes(range(256)) * 100
    (served / "x.gz").write_bytes(payload)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        f = RemoteFile("x.gz", _sha(payload), len(payload), (f"{url}/missing.gz", f"{url}/x.gz"))
        dest = dl.fetch(f, tmp_path / "data", retries=2, backoff=0)  # first mirror: 404, second works
        assert dest.read_bytes() == payload
    finally:
        server.shutdown()
        server.server_close()


def test_checksum_mismatch_leaves_nothing_and_says_where_to_put_files(tmp_path):
    f = _remote(tmp_path, "a.bin", b"tampered bytes", sha="0" * 64)
    folder = tmp_path / "data"
    with pytest.raises(ChecksumError) as info:
        dl.fetch(f, folder, backoff=0)
    msg = str(info.value)
    assert "SHA-256" in msg and str(folder) in msg and "by hand" in msg and f.urls[0] in msg
    assert _files_in(folder) == []


def test_mismatching_mirror_falls_back_to_next(tmp_path):
    good = b"the real file"
    bad_src = tmp_path / "mirror1" / "a.bin"
    bad_src.parent.mkdir()
    bad_src.write_bytes(b"an old version")
    f = _remote(tmp_path, "a.bin", good, extra_urls=(bad_src.as_uri(),))
    assert dl.fetch(f, tmp_path / "data", backoff=0).read_bytes() == good


class _FlakyResponse:
    """A response that delivers ``data`` in chunks and fails after ``fail_after`` chunks."""

    def __init__(self, data, fail_after=None, exc=None):
        self.chunks = [data[i : i + 4] for i in range(0, len(data), 4)]
        self.fail_after = fail_after
        self.exc = exc if exc is not None else ConnectionResetError("connection reset by peer")
        self.headers = {"Content-Length": str(len(data))}

    def read(self, n=-1):
        if self.fail_after is not None and self.fail_after == 0:
            raise self.exc
        if self.fail_after is not None:
            self.fail_after -= 1
        return self.chunks.pop(0) if self.chunks else b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_interrupted_download_leaves_no_file_then_retry_succeeds(tmp_path, monkeypatch):
    data = b"0123456789abcdef" * 4
    f = RemoteFile("x.bin", _sha(data), len(data), ("https://example.invalid/x.bin",))
    attempts = []

    def opener(url, timeout):
        attempts.append(url)
        return _FlakyResponse(data, fail_after=3 if len(attempts) == 1 else None)

    monkeypatch.setattr(dl, "_urlopen", opener)
    dest = dl.fetch(f, tmp_path / "data", retries=3, backoff=0)
    assert len(attempts) == 2 and dest.read_bytes() == data and _files_in(tmp_path / "data") == ["x.bin"]


def test_download_that_keeps_failing_leaves_no_partial_file(tmp_path, monkeypatch):
    data = b"x" * 100
    f = RemoteFile("x.bin", _sha(data), len(data), ("https://example.invalid/x.bin",))
    monkeypatch.setattr(dl, "_urlopen", lambda url, timeout: _FlakyResponse(data, fail_after=2))
    with pytest.raises(DownloadError, match="connection reset"):
        dl.fetch(f, tmp_path / "data", retries=2, backoff=0)
    assert _files_in(tmp_path / "data") == []


def test_keyboard_interrupt_mid_download_leaves_no_partial_file(tmp_path, monkeypatch):
    data = b"y" * 100
    f = RemoteFile("x.bin", _sha(data), len(data), ("https://example.invalid/x.bin",))
    monkeypatch.setattr(dl, "_urlopen",
                        lambda url, timeout: _FlakyResponse(data, fail_after=5, exc=KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        dl.fetch(f, tmp_path / "data")
    assert _files_in(tmp_path / "data") == []


def test_offline_error_is_clear(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(dl, "_urlopen", offline)
    with pytest.raises(DownloadError) as info:
        dl.download_dataset("mnist", root=tmp_path, retries=2, backoff=0)
    msg = str(info.value)
    assert not isinstance(info.value, ChecksumError)
    assert "offline" in msg and "name resolution" in msg and str(tmp_path / "mnist") in msg and "sha256" in msg
    assert _files_in(tmp_path / "mnist") == []


def test_http_404_is_not_retried(tmp_path, monkeypatch):
    calls = []

    def not_found(url, timeout):
        calls.append(url)
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    monkeypatch.setattr(dl, "_urlopen", not_found)
    f = RemoteFile("x.bin", "0" * 64, None, ("https://a.invalid/x.bin", "https://b.invalid/x.bin"))
    with pytest.raises(DownloadError, match="HTTP 404"):
        dl.fetch(f, tmp_path, retries=3, backoff=0)
    assert calls == list(f.urls)


def test_download_false_and_corrupt_local_files(tmp_path):
    f = _remote(tmp_path, "a.bin", b"good data")
    folder = tmp_path / "data"
    with pytest.raises(FileNotFoundError, match="download=False"):
        dl.fetch(f, folder, download=False)
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"truncat")  # e.g. copied by hand, incompletely
    with pytest.raises(ChecksumError, match="corrupt"):
        dl.fetch(f, folder, download=False)
    assert dl.fetch(f, folder).read_bytes() == b"good data"  # download=True repairs it
    assert dl.fetch(f, folder, download=False).read_bytes() == b"good data"
    with pytest.raises(ValueError, match="retries"):
        dl.fetch(f, folder, retries=0)


# ----------------------------------------------------------------------------------------- whole data sets


def test_load_mnist_from_tiny_files(tiny_mnist, tmp_path):
    X, y = dl.load("mnist", "train", root=tmp_path / "data", normalize=False)
    assert X.shape == (12, 784) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(y, torch.from_numpy(tiny_mnist["train_labels"].astype(np.int64)))
    assert torch.allclose(X[0], torch.from_numpy(tiny_mnist["train_images"][0].ravel() / 255.0).float())
    Xn, _ = dl.load("mnist", "train", root=tmp_path / "data", download=False, flatten=False)
    assert Xn.shape == (12, 1, 28, 28)
    assert torch.allclose(Xn.reshape(12, -1), (X - 0.1307) / 0.3081, atol=1e-6)
    Xt, yt = dl.load("mnist", "test", root=tmp_path / "data", dtype=torch.float64)
    assert Xt.shape == (6, 784) and Xt.dtype == torch.float64 and yt.tolist() == list(range(6))
    assert _files_in(tmp_path / "data" / "mnist") == sorted(f.name for f in dl.DATASET_FILES["mnist"].values())


def test_load_dataset_dispatches_to_downloaders(tiny_mnist, tmp_path, monkeypatch):
    from pnc.data import load_dataset

    monkeypatch.setenv("PNC_DATA_DIR", str(tmp_path / "envdata"))
    X, y = load_dataset("mnist", "train")
    assert X.shape == (12, 784) and (tmp_path / "envdata" / "mnist").is_dir()
    with pytest.raises(ValueError, match="split"):
        load_dataset("mnist", "all")


def test_load_cifar10_from_tiny_archive(tmp_path, monkeypatch):
    data, expected = _cifar_archive()
    f = _remote(tmp_path, "cifar-10-binary.tar.gz", data)
    monkeypatch.setitem(dl.DATASET_FILES, "cifar10", {"archive": f})
    X, y = dl.load("cifar10", "train", root=tmp_path / "data", normalize=False, flatten=False)
    assert X.shape == (15, 3, 32, 32) and y.shape == (15,)
    labels, pixels = expected["data_batch_1.bin"]
    assert torch.allclose(X[0].reshape(-1), torch.from_numpy(pixels[0] / 255.0).float())
    Xn, _ = dl.load("cifar10", "train", root=tmp_path / "data")
    mean = torch.tensor(dl.CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(dl.CIFAR10_STD).view(1, 3, 1, 1)
    assert Xn.shape == (15, 3072) and torch.allclose(Xn, ((X - mean) / std).reshape(15, -1), atol=1e-6)
    # the parsed arrays are cached next to the archive; a damaged cache is re-parsed
    cached = [p for p in (tmp_path / "data" / "cifar10").iterdir() if p.name.startswith("cifar10-train")]
    assert len(cached) == 1
    cached[0].write_bytes(b"garbage")
    X2, y2 = dl.load("cifar10", "train", root=tmp_path / "data", normalize=False, flatten=False)
    assert torch.equal(X2, X) and torch.equal(y2, y)


def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("PNC_DATA_DIR", str(tmp_path / "env"))
    assert dl.data_dir() == tmp_path / "env"
    assert dl.data_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("PNC_DATA_DIR")
    assert dl.data_dir().parts[-2:] == ("pnc", "data")


def test_load_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="no downloadable data set"):
        dl.load("svhn", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        dl.load("mnist", "valid", root=tmp_path)
    with pytest.raises(ValueError, match="dtype"):
        dl.load("mnist", "train", root=tmp_path, dtype=torch.int64)


def test_pinned_table_is_well_formed():
    for name, files in dl.DATASET_FILES.items():
        text = dl.manual_instructions(name)
        for f in files.values():
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0
            assert f.size and f.size > 0 and f.urls
            assert all(u.startswith(("https://", "http://")) for u in f.urls)
            assert f.sha256 in text and f.urls[0] in text
        assert len({f.name for f in files.values()}) == len(files)
    assert dl.DATASET_FILES["cifar10"]["archive"].name == "cifar-10-binary.tar.gz"  # binary, never pickles
