"""Tests for pnc.book.heldout: a trained network's layerwise table on its training and held-out splits."""

import numpy as np
import pytest
import torch

import pnc
from pnc import models, train
from pnc.book import experiments as E
from pnc.book import heldout as H
from pnc.book.recipes import run_recipe


def _blobs(n_per_class, seed, dim=12, n_classes=3):
    """Gaussian classes around fixed means (the same means for every seed), float32."""
    means = 3.0 * torch.randn(n_classes, dim, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n_classes).repeat_interleave(n_per_class)
    return means[y] + torch.randn(len(y), dim, generator=gen), y


@pytest.fixture(scope="module")
def trained():
    """A tiny hybrid trained to fit 20 samples per class, with a held-out split from the same classes."""
    torch.set_num_threads(1)
    net = models.HybridNetwork(12, 16, 3, n_nonlinear=1, n_linear=2, seed=0)
    Xtr, ytr = _blobs(20, seed=1)
    cfg = train.TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, loss="mse", epochs=60, batch_size=20, seed=0)
    train.train(net, Xtr, ytr, cfg)
    return net, (Xtr, ytr), _blobs(30, seed=2)


def test_train_table_is_pnc_measure_on_the_train_split(trained):
    net, tr, te = trained
    kinds = E._kinds(net)
    table_tr, table_te = H.train_test_tables(net, tr, te, kinds=kinds)
    reference = pnc.measure(net, tr, metrics=E.LAYER_METRICS)
    assert len(table_tr) == len(table_te) == len(reference) == 4
    for key in ("compression", "discrimination", "nc1", "numerical_rank"):
        np.testing.assert_allclose(table_tr.column(key), reference.column(key), rtol=1e-12)
        assert key in table_te.columns
    assert [r["kind"] for r in table_tr] == kinds == ["input", "nonlinear", "linear", "linear"]
    # the held-out samples give another table: different inputs, a different C at every layer
    assert not np.allclose(table_te.column("compression"), table_tr.column("compression"), rtol=1e-3)
    # and it is the same measurement as the experiments' training table (one implementation of the metrics)
    net.eval()
    with torch.no_grad():
        feats = [f.numpy() for f in net.forward_features(te[0])]
    stored = E.layer_table(feats, te[1].numpy(), kinds=kinds, probe=False)
    np.testing.assert_allclose(stored.column("compression"), table_te.column("compression"), rtol=1e-6)


def _layer_features(net, X):
    """``z^0 .. z^{L-1}`` of an eval-mode pass, float64 (the model's mode is put back)."""
    was_training = net.training
    net.eval()
    with torch.no_grad():
        feats = [f.double().numpy() for f in net.forward_features(X)]
    net.train(was_training)
    return feats


def _compression_by_hand(x, y):
    """C = Tr Sigma_W / Tr Sigma_B, Sigma_B unweighted over classes about the sample mean."""
    classes = np.unique(y)
    mu = np.stack([x[y == k].mean(0) for k in classes])
    within = sum(((x[y == k] - mu[i]) ** 2).sum() for i, k in enumerate(classes)) / x.shape[0]
    return within / (((mu - x.mean(0)) ** 2).sum() / classes.size)


def _discrimination_by_hand(x, y):
    """D = 1 - the largest cosine between two (uncentred) class means."""
    mu = np.stack([x[y == k].mean(0) for k in np.unique(y)])
    u = mu / np.linalg.norm(mu, axis=1, keepdims=True)
    cos = u @ u.T
    return 1.0 - cos[~np.eye(len(u), dtype=bool)].max()


def test_generalisation_gap(trained):
    net, tr, te = trained
    a, b = H.train_test_tables(net, tr, te)
    # the gap from the definitions, on the layer features of each split taken here
    ytr, yte = tr[1].numpy(), te[1].numpy()
    pairs = list(zip(_layer_features(net, tr[0]), _layer_features(net, te[0]), strict=True))
    c_ratio = [_compression_by_hand(zte, yte) / _compression_by_hand(ztr, ytr) for ztr, zte in pairs]
    d_drop = [_discrimination_by_hand(ztr, ytr) - _discrimination_by_hand(zte, yte) for ztr, zte in pairs]
    gap = H.generalisation_gap(a, b)
    np.testing.assert_allclose(gap, c_ratio, rtol=1e-6)
    assert gap[-1] > 1  # the network compresses its own training samples more than new ones
    d_gap = H.generalisation_gap(a.to_dict()["rows"], b.to_dict()["rows"], key="discrimination")
    np.testing.assert_allclose(d_gap, d_drop, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="different layers"):
        H.generalisation_gap(a, b.to_dict()["rows"][:2])
    with pytest.raises(ValueError, match="no column 'probe_accuracy'"):
        H.generalisation_gap(a, b, key="probe_accuracy")


def test_bad_input_raises_value_error(trained):
    net, tr, te = trained
    X, y = te
    with pytest.raises(ValueError, match="torch.nn.Module"):
        H.train_test_tables("net", tr, te)
    with pytest.raises(ValueError, match="pair"):
        H.train_test_tables(net, tr, X)
    with pytest.raises(ValueError, match="labels"):
        H.train_test_tables(net, tr, (X, y[:-1]))
    with pytest.raises(ValueError, match="N inputs"):
        H.train_test_tables(net, tr, (X[0], y[:1]))
    with pytest.raises(ValueError, match="differ in dimension"):
        H.train_test_tables(net, tr, (X[:, :5], y))
    with pytest.raises(ValueError, match="single class"):
        H.train_test_tables(net, tr, (X, torch.zeros_like(y)))
    with pytest.raises(ValueError, match=r"classes the training split does not: \[7\]"):
        H.train_test_tables(net, tr, (X, torch.where(y == 2, 7, y)))
    with pytest.raises(ValueError, match="integer class labels"):
        H.train_test_tables(net, tr, (X, y.float()))
    with pytest.raises(ValueError, match="kinds"):
        H.split_table(net, X, y, kinds=["input"])


def test_recipe_heldout_rebuilds_the_trained_network():
    result = run_recipe(seed=1)  # chapter 4's network (about a second)
    train_tab, test_tab = H.recipe_heldout(result, test_seed=2)
    np.testing.assert_allclose(train_tab.column("compression"), result.compression, rtol=1e-9)
    np.testing.assert_allclose(train_tab.column("discrimination"), result.discrimination, rtol=1e-9)
    assert train_tab.columns == test_tab.columns and len(test_tab) == result.L
    # fresh draws of the recipe's data share no class structure with the training draw: no compression
    assert test_tab.column("compression")[-1] > 10 * result.compression[-1]
    with pytest.raises(ValueError, match="must differ"):
        H.recipe_heldout(result, test_seed=1)
    with pytest.raises(ValueError, match="run_recipe"):
        H.recipe_heldout(object(), test_seed=2)
    with pytest.raises(ValueError, match="RecipeResult"):
        H.recipe_network(object())


def test_last_compressing_layer():
    assert H.last_compressing_layer([2.0, 1.0, 0.5, 0.6, 0.1]) == 2
    assert H.last_compressing_layer(np.array([2.0, 1.0, 0.5, 0.25])) == 3
    assert H.last_compressing_layer([2.0, 3.0, 1.0, 0.5]) == 3     # from layer 1 by default
    assert H.last_compressing_layer([2.0, 3.0, 1.0, 0.5], start=0) == 0
    assert H.last_compressing_layer([1.0, 1.0, 2.0]) == 1          # no fall at all: the start
    with pytest.raises(ValueError, match="at least 2"):
        H.last_compressing_layer([1.0])
    with pytest.raises(ValueError, match="start"):
        H.last_compressing_layer([1.0, 0.5], start=2)
    with pytest.raises(ValueError, match="finite"):
        H.last_compressing_layer([1.0, np.nan])
