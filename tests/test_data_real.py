"""Tests for the offline real data sets in pnc.data: scikit-learn digits and locally generated MNIST-1D."""

import random

import numpy as np
import pytest
import torch

import pnc.data as data
from pnc.data import load_dataset, load_digits, load_mnist1d, stratified_split, subsample_per_class


def test_digits_splits_shapes_and_dtypes():
    X, y = load_digits("train")
    Xt, yt = load_digits("test")
    Xa, ya = load_digits("all")
    assert X.shape == (1347, 64) and Xt.shape == (450, 64) and Xa.shape == (1797, 64)
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    assert set(y.tolist()) == set(yt.tolist()) == set(range(10))
    assert load_digits("test", flatten=False)[0].shape == (450, 1, 8, 8)
    assert load_digits("train", dtype=torch.float64)[0].dtype == torch.float64


def test_digits_split_is_stratified_seeded_and_disjoint():
    _, ya = load_digits("all")
    train_idx, test_idx = stratified_split(ya, 0.25, seed=0)
    assert np.intersect1d(train_idx, test_idx).size == 0 and train_idx.size + test_idx.size == 1797
    counts_all = np.bincount(ya.numpy())
    counts_test = np.bincount(ya.numpy()[test_idx])
    assert np.all(np.abs(counts_test - 0.25 * counts_all) <= 0.5)
    X0, y0 = load_digits("test", seed=0)
    X0b, y0b = load_digits("test", seed=0)
    X1, _ = load_digits("test", seed=1)
    assert torch.equal(X0, X0b) and torch.equal(y0, y0b) and not torch.equal(X0, X1)


def test_digits_normalisation_uses_training_statistics_and_all_is_the_union():
    X, _ = load_digits("train")
    assert torch.allclose(X.mean(0), torch.zeros(64), atol=1e-5)
    std = X.std(0, unbiased=False)
    constant = std < 1e-6  # pixels that are always 0 in the training part are only centred
    assert constant.any() and torch.allclose(std[~constant], torch.ones(int((~constant).sum())), atol=1e-4)
    Xa, ya = load_digits("all")
    train_idx, test_idx = stratified_split(ya, 0.25, seed=0)
    assert torch.equal(Xa[train_idx], X) and torch.equal(Xa[test_idx], load_digits("test")[0])
    raw, _ = load_digits("all", normalize=False)
    assert float(raw.min()) == 0.0 and float(raw.max()) == 16.0


@pytest.mark.parametrize(
    "kwargs, match",
    [({"split": "valid"}, "split"), ({"test_fraction": 1.0}, "test_fraction"), ({"seed": -1}, "seed"),
     ({"dtype": torch.int32}, "dtype")],
)
def test_digits_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits(**kwargs)


@pytest.fixture(scope="module")
def mnist1d_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    data._MNIST1D_CACHE.clear()
    return root


def test_mnist1d_generated_locally_with_restored_global_rng(mnist1d_root, monkeypatch):
    import mnist1d.data

    monkeypatch.setattr(mnist1d.data, "get_dataset", lambda *a, **k: pytest.fail("get_dataset downloads"))
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002 - checking that the legacy global state is left alone
    expected = (random.random(), np.random.rand())  # noqa: NPY002
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002
    X, y = load_mnist1d("train", root=mnist1d_root)
    assert (random.random(), np.random.rand()) == expected  # noqa: NPY002
    Xt, yt = load_mnist1d("test", root=mnist1d_root)
    assert X.shape == (4000, 40) and Xt.shape == (1000, 40) and X.dtype == torch.float32
    assert y.dtype == torch.int64 and set(y.tolist()) == set(range(10)) and np.bincount(y.numpy()).min() > 300
    Xa, ya = load_mnist1d("all", root=mnist1d_root)
    assert torch.equal(Xa, torch.cat([X, Xt])) and torch.equal(ya, torch.cat([y, yt]))
    assert abs(float(Xa.double().mean())) < 1e-6 and abs(float(Xa.double().std()) - 1) < 1e-3


def test_mnist1d_disk_cache_is_reused_and_repaired(tmp_path, monkeypatch):
    X, y = load_mnist1d("train", num_samples=300, root=tmp_path)
    files = list((tmp_path / "mnist1d").glob("*.npz"))
    assert len(files) == 1 and "seed0-n300" in files[0].name
    data._MNIST1D_CACHE.clear()
    monkeypatch.setattr(data, "_generate_mnist1d", lambda *a: pytest.fail("should load from disk"))
    X2, y2 = load_mnist1d("train", num_samples=300, root=tmp_path)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    monkeypatch.undo()
    files[0].write_bytes(b"damaged")
    data._MNIST1D_CACHE.clear()
    X3, _ = load_mnist1d("train", num_samples=300, root=tmp_path)
    assert torch.equal(X, X3)
    assert load_npz_ok(files[0])


def load_npz_ok(path):
    from pnc.cache import load_npz

    return set(load_npz(path)) == {"x", "y", "x_test", "y_test"}


def test_mnist1d_seed_and_size(tmp_path):
    a, _ = load_mnist1d("train", seed=1, num_samples=200, cache=False)
    b, _ = load_mnist1d("train", seed=1, num_samples=200, cache=False)
    c, _ = load_mnist1d("train", seed=2, num_samples=200, cache=False)
    assert a.shape == (160, 40) and torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="split"):
        load_mnist1d("valid")
    with pytest.raises(ValueError, match="num_samples"):
        load_mnist1d(num_samples=3)


def test_load_dataset_dispatch_and_subsampling(mnist1d_root):
    X, y = load_dataset("digits", "train")
    assert torch.equal(X, load_digits("train")[0])
    Xs, ys = load_dataset("digits", "train", n_per_class=20, seed=3)
    assert Xs.shape == (200, 64) and np.bincount(ys.numpy()).tolist() == [20] * 10
    Xm, _ = load_dataset("mnist1d", "test", root=mnist1d_root)
    assert Xm.shape == (1000, 40)
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("imagenet", "train")


def test_subsample_per_class_is_seeded_and_checks_counts():
    X = torch.arange(30.0).reshape(15, 2)
    y = torch.tensor([0] * 5 + [1] * 5 + [2] * 5)
    a = subsample_per_class(X, y, 3, seed=0)
    b = subsample_per_class(X, y, 3, seed=0)
    assert torch.equal(a[0], b[0]) and a[1].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="fewer than n_per_class"):
        subsample_per_class(X, y, 6)


def test_digits_match_scikit_learn_loader():
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    raw, labels = load_digits("all", normalize=False, dtype=torch.float64)
    assert np.array_equal(raw.numpy(), bunch.data) and np.array_equal(labels.numpy(), bunch.target)
