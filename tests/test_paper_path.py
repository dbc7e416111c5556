"""The paper-scale code path end to end, without the network and in seconds.

Each named experiment runs through the CLI with ``--scale paper``: its real paper configuration (dataset, SGD with
momentum 0.9, weight decay 1e-4, minibatches, α) with only the sizes shrunk by ``--set``, on tiny files in the
original CIFAR-10 / FashionMNIST formats that the real downloader fetches from ``file://`` URLs, verifies and parses.
What this does *not* show is the paper's findings: those need the real datasets and a GPU-hour per network.
"""

import gzip
import io
import json
import tarfile

import numpy as np
import pytest
import torch
from test_download import _idx, _remote  # tests/ is on sys.path (rootdir conftest)

import pnc.download as dl
from pnc.book import experiments as E
from pnc.book.cli import main

SHRINK = ["width=16", "epochs=2", "batch_size=16"]


def _cifar_archive(n_per_batch: int, n_test: int) -> bytes:
    """A CIFAR-10 binary archive whose labels cycle through all ten classes in every batch."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        members = [(f"data_batch_{i}.bin", n_per_batch) for i in range(1, 6)] + [("test_batch.bin", n_test)]
        for fname, n in members:
            labels = (np.arange(n) % 10).astype(np.uint8)
            pixels = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
            data = np.concatenate([labels[:, None], pixels], axis=1).tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{fname}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def tiny_paper_data(tmp_path, monkeypatch):
    """Tiny CIFAR-10 (100 training, 40 test images) and FashionMNIST (60 / 30) behind the real downloader."""
    monkeypatch.setitem(dl.DATASET_FILES, "cifar10",
                        {"archive": _remote(tmp_path, "cifar-10-binary.tar.gz", _cifar_archive(20, 40))})
    rng = np.random.default_rng(1)
    files = {}
    for split, prefix, n in (("train", "train", 60), ("test", "t10k", 30)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for role, name, array in ((f"{split}_images", f"{prefix}-images-idx3-ubyte.gz", images),
                                  (f"{split}_labels", f"{prefix}-labels-idx1-ubyte.gz", labels)):
            files[role] = _remote(tmp_path / "fashion", name, gzip.compress(_idx(array)))
    monkeypatch.setitem(dl.DATASET_FILES, "fashion_mnist", files)
    monkeypatch.setenv("PNC_DATA_DIR", str(tmp_path / "data"))
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path
    torch.set_num_threads(old)


def _run_paper(name: str, tmp_path, capsys) -> dict:
    argv = ["run", name, "--scale", "paper", "--device", "cpu", "--seed", "0", "--out", str(tmp_path / "out"),
            "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    for item in SHRINK:
        argv += ["--set", item]
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads((tmp_path / "out" / f"{name}-paper-seed0.json").read_text())


@pytest.mark.parametrize("name", ["hybrid", "mlp", "transfer", "depths"])
def test_paper_configuration_runs_end_to_end_on_tiny_files(name, tiny_paper_data, capsys):
    doc = _run_paper(name, tiny_paper_data, capsys)
    paper = E.EXPERIMENTS[name].paper
    config = doc["config"]
    assert doc["scale"] == "paper" and config["dataset"] == paper["dataset"]
    for key in ("optimizer", "momentum", "weight_decay", "alpha", "lr", "init"):
        assert config[key] == paper[key], key
    assert config["width"] == 16 and config["epochs"] == 2 and config["batch_size"] == 16
    # the downloader left verified archives, and nothing half-written, in the data folder
    folder = tiny_paper_data / "data" / paper["dataset"]
    assert any(p.name.endswith(".gz") for p in folder.iterdir())
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
    if name == "depths":
        assert [d["depth"] for d in doc["depths"]] == [5, 7, 9]
        for d in doc["depths"]:
            assert len(d["layers"]) == d["depth"] and np.isfinite(d["final_loss"])
        return
    layers = doc["layers"]
    assert len(layers) == 8  # the input and the seven hidden layers of a depth-8 network
    assert layers[0]["kind"] == "input" and layers[0]["layer"] == 0
    for row in layers:
        for key in ("compression", "discrimination", "nc1"):
            assert row[key] is None or np.isfinite(row[key]), (key, row)
        assert isinstance(row["numerical_rank"], int) and row["numerical_rank"] >= 1
    if name == "transfer":
        assert len(doc["transfer_accuracy"]) == 5
        assert all(0.0 <= a <= 1.0 for a in doc["transfer_accuracy"])
        assert doc["summary"]["n_pretrain"] == 50 and doc["summary"]["n_transfer_test"] == 20
    else:
        assert all(0.0 <= r["probe_accuracy"] <= 1.0 for r in layers)


def test_the_paper_depth_experiment_runs_offline_from_the_debian_copy(tmp_path, monkeypatch, capsys):
    """Fashion-MNIST at paper scale with no network: only a re-compressed copy in the system package's folder (as
    Debian's dataset-fashion-mnist installs it); every download URL is dead. The run must use that copy, say so in
    its result, and write nothing into the data folder."""
    import hashlib

    from pnc.download import RemoteFile

    rng = np.random.default_rng(2)
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    system.mkdir()
    files = {}
    for split, prefix, n in (("train", "train", 60), ("test", "t10k", 30)):
        for role, name, array in (
            (f"{split}_images", f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
            (f"{split}_labels", f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8)),
        ):
            raw = _idx(array)
            upstream = gzip.compress(raw, mtime=0)
            dead = (tmp_path / "no-such-server" / name).as_uri()
            files[role] = RemoteFile(name, hashlib.sha256(upstream).hexdigest(), len(upstream), (dead,),
                                     content_sha256=hashlib.sha256(raw).hexdigest())
            (system / name).write_bytes(gzip.compress(raw, compresslevel=1, mtime=1))  # another gzip header
    monkeypatch.setitem(dl.DATASET_FILES, "fashion_mnist", files)
    monkeypatch.setitem(dl.SYSTEM_FOLDERS, "fashion_mnist", (system,))
    monkeypatch.setenv("PNC_DATA_DIR", str(tmp_path / "data"))
    dl._VERIFIED.clear()
    torch.set_num_threads(1)
    doc = _run_paper("depths", tmp_path, capsys)
    assert doc["config"]["dataset"] == "fashion_mnist" and doc["scale"] == "paper"
    assert "dataset-fashion-mnist" in doc["data_source"] and str(system) in doc["data_source"]
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.gz"))
