"""The named real-data experiments: contract, configurations and the paper's qualitative findings at book scale.

The book-scale runs take a few seconds each on a laptop CPU; each is run once per module (fixtures).
"""

import numpy as np
import pytest
import torch

from pnc.book import experiments as E
from pnc.book.runner import RunContext, validate_result
from pnc.plotting import fit_geometric_rate


@pytest.fixture(scope="module", autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _run(name, seed=0, **overrides):
    exp = E.EXPERIMENTS[name]
    return exp.run({**exp.book, **overrides}, RunContext(seed=seed))


def _seeded_run(name):
    """A module-scoped fixture running experiment ``name`` at book scale with seeds 0 and 1."""

    @pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
    def fixture(request):
        return _run(name, seed=request.param)

    return fixture


hybrid = _seeded_run("hybrid")
transfer = _seeded_run("transfer")
mlp = _seeded_run("mlp")
depths = _seeded_run("depths")


def test_registry_and_paper_configs():
    assert {"hybrid", "mlp", "transfer", "depths"} <= set(E.EXPERIMENTS)
    for name, exp in E.EXPERIMENTS.items():
        assert exp.name == name and exp.description and callable(exp.run)
        assert exp.paper["dataset"] in ("cifar10", "fashion_mnist")
        assert exp.paper["width"] == 1024 and exp.paper["epochs"] == 400
        assert exp.paper["optimizer"] == "sgd" and exp.paper["momentum"] == 0.9 and exp.paper["weight_decay"] == 1e-4
        assert exp.book["dataset"] in ("digits", "mnist1d")
    assert E.EXPERIMENTS["hybrid"].paper["alpha"] == 100.0 and E.EXPERIMENTS["mlp"].paper["alpha"] == 1.0
    hyb = E.EXPERIMENTS["hybrid"].paper
    assert hyb["n_nonlinear"] + hyb["n_linear"] + 1 == 8 and E.EXPERIMENTS["mlp"].paper["depth"] == 8
    with pytest.raises(ValueError, match="unknown experiment"):
        E.get_experiment("nope")
    with pytest.raises(ValueError, match="scale"):
        E.EXPERIMENTS["hybrid"].config("huge")


def test_hybrid_result_contract(hybrid):
    validate_result(hybrid, "hybrid")
    layers = hybrid["layers"]
    assert [r["layer"] for r in layers] == list(range(7))
    assert [r["kind"] for r in layers] == ["input", "nonlinear", "nonlinear"] + ["linear"] * 4
    assert hybrid["arrays"]["projection"].shape == (7, 500, 2)


def test_hybrid_linear_layers_compress_geometrically(hybrid):
    layers = hybrid["layers"]
    part = list(range(2, 7))  # last nonlinear output, then the four linear layers
    c = np.array([layers[i]["compression"] for i in part])
    ratio, r2 = fit_geometric_rate(c, part)
    assert r2 >= 0.9, f"log C_l over the linear layers is not a straight line: R^2 = {r2:.3f}"
    assert ratio < 0.6 and np.all(np.diff(c) < 0)
    assert hybrid["summary"]["linear_r2"] == pytest.approx(r2)


def test_hybrid_probe_saturates_while_rank_falls(hybrid):
    layers = hybrid["layers"]
    probe = np.array([r["probe_accuracy"] for r in layers])
    rank = np.array([r["rank"] for r in layers])
    first_full = int(np.argmax(probe >= 0.99))
    assert probe[first_full] >= 0.99 and first_full < len(layers) - 2  # saturates well before the last layer
    assert np.all(probe[first_full:] >= 0.99)
    assert rank[1] > rank[0]  # the first nonlinear block lifts the rank ...
    assert np.all(np.diff(rank[2:]) < 0) and rank[-1] <= 12  # ... and the linear layers bring it down to ~K


def test_mlp_rank_rises_then_falls_while_probe_saturates(mlp):
    # the authors' first figure, for the all-nonlinear network: separability early, compression late
    validate_result(mlp, "mlp")
    layers = mlp["layers"]
    assert [r["kind"] for r in layers] == ["input"] + ["nonlinear"] * (len(layers) - 1)
    probe = np.array([r["probe_accuracy"] for r in layers])
    rank = np.array([r["rank"] for r in layers])
    first_full = int(np.argmax(probe >= 0.99))
    assert probe[first_full] >= 0.99 and first_full < len(layers) - 2
    assert np.all(probe[first_full:] >= 0.99)
    peak = int(np.argmax(rank))
    assert rank[peak] > rank[0] and 1 <= peak <= len(layers) - 3  # rises in the first layers ...
    assert rank[-1] < rank[peak] and np.all(np.diff(rank[peak:]) <= 0)  # ... then falls, never rising again
    c = np.array([r["compression"] for r in layers[1:]])
    assert np.all(np.diff(c) < 0) and c[-1] < 0.5 * c[0]  # every hidden layer compresses


def test_depths_default_initialisation_compresses_geometrically(depths):
    # chapter 6: with PyTorch's default initialisation, C_l still falls geometrically at L = 5, 7, 9
    assert [d["depth"] for d in depths["depths"]] == [5, 7, 9]
    for d in depths["depths"]:
        c = np.array([r["compression"] for r in d["layers"]])
        assert len(c) == d["depth"]  # the input and the L - 1 hidden layers
        assert np.all(np.diff(c) < 0), f"L = {d['depth']}: C_l not decreasing: {c}"
        assert c[1] / c[-1] >= 4.0
        assert d["r2"] >= 0.95 and 0.3 < d["ratio"] < 0.7, d
        assert d["final_loss"] < 1e-2


def test_transfer_accuracy_increases_with_head_depth(transfer):
    validate_result(transfer, "transfer", require_transfer=True)
    heads = transfer["heads"]
    assert [h["head_layers"] for h in heads] == [1, 2, 3, 4, 5]
    acc = np.array(transfer["transfer_accuracy"])
    comp = np.array([h["compression"] for h in heads])
    assert np.all(np.diff(acc) >= -1e-9), f"transfer accuracy is not monotone in head depth: {acc}"
    assert acc[-1] - acc[0] >= 0.03
    assert np.all(np.diff(comp) > 0)  # fewer head layers: more collapsed pre-head features


def test_unregularised_probe_cannot_see_the_linear_head(transfer):
    # Proposition (chapter 1): injective linear layers leave a least-squares probe's accuracy unchanged, so the
    # transfer effect of the book's linear head needs a probe that ignores near-null directions (ridge).
    from pnc.probes import fit_probe

    a = transfer["arrays"]
    ytr, yte = a["transfer_train_labels"], a["transfer_test_labels"]
    flat = [fit_probe(a[f"transfer_train_h{h}"], ytr, ridge=1e-8).accuracy(a[f"transfer_test_h{h}"], yte)
            for h in (1, 2, 3, 4, 5)]
    assert max(flat) - min(flat) <= 0.02
    ridge = [fit_probe(a[f"transfer_train_h{h}"], ytr, ridge=1e-2).accuracy(a[f"transfer_test_h{h}"], yte)
             for h in (1, 2, 3, 4, 5)]
    np.testing.assert_allclose(ridge, transfer["transfer_accuracy"])


def test_bad_configs_raise_value_error():
    exp = E.EXPERIMENTS["transfer"]
    with pytest.raises(ValueError, match="overlap"):
        exp.run({**exp.book, "transfer_classes": [4, 5]}, None)
    with pytest.raises(ValueError, match="head_layers"):
        exp.run({**exp.book, "head_layers": []}, None)
    with pytest.raises(ValueError, match="mode"):
        exp.run({**exp.book, "mode": "sideways"}, None)
    with pytest.raises(ValueError, match="missing"):
        E.EXPERIMENTS["hybrid"].run({"dataset": "digits"}, None)
    with pytest.raises(ValueError, match="network"):
        E.EXPERIMENTS["hybrid"].run({**E.EXPERIMENTS["hybrid"].book, "network": "cnn"}, None)
    with pytest.raises(ValueError, match="seed"):
        E.EXPERIMENTS["hybrid"].run(E.EXPERIMENTS["hybrid"].book, RunContext(seed=-1))
