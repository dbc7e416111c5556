"""The named real-data experiments: contract, configurations and the paper's qualitative findings at book scale.

The book-scale runs take a few seconds each on a laptop CPU; each is run once per module (fixtures).
"""

import copy
import functools

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


SHORT = {"epochs": 30, "lr": 0.01}
"""The contract tests train 30 epochs at lr 0.01 (the chapters train to fit, 200 epochs: minutes per run)."""


SHORT_TRANSFER = {"init": "orthogonal", "n_per_class": 600}
"""The transfer contract test keeps the authors' initialisation (scaled orthogonal, ξ = 0.1) and 600 pretraining
images per class (chapter 8 trains to fit with PyTorch's default initialisation on 300)."""


@functools.cache
def _short_run(name, seed):
    """Experiment ``name`` at book scale, shortened to :data:`SHORT`; each (name, seed) trains once per session
    (pytest keeps one parameter of a module fixture at a time, so a test taking two of them would retrain)."""
    return _run(name, seed=seed, **SHORT, **(SHORT_TRANSFER if name == "transfer" else {}))


def _seeded_run(name):
    """A module-scoped fixture running experiment ``name`` at book scale, shortened to :data:`SHORT`, with seeds 0
    and 1 (a deep copy of the cached run: a test cannot change what another sees)."""

    @pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
    def fixture(request):
        return copy.deepcopy(_short_run(name, request.param))

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
        # the transfer pretraining and the wide hybrid use half the images per class (they fit in the budget)
        assert exp.book["dataset"] == "fashion_mnist"
        assert exp.book["n_per_class"] == (300 if name in ("transfer", "wide_hybrid") else 600)
    assert all(E.EXPERIMENTS[name].book["epochs"] == 200 for name in ("hybrid", "mlp", "depths"))  # trained to fit
    assert E.EXPERIMENTS["transfer"].book["epochs"] == 100 and E.EXPERIMENTS["transfer"].book["init"] == "default"
    assert E.EXPERIMENTS["hybrid"].paper["alpha"] == 100.0 and E.EXPERIMENTS["mlp"].paper["alpha"] == 1.0
    wide, hybrid = E.EXPERIMENTS["wide_hybrid"].book, E.EXPERIMENTS["hybrid"].book
    assert wide["width"] == 784 and wide["epochs"] == 100   # the input's dimension: no layer capped below its rank
    assert {k: v for k, v in wide.items() if k not in ("width", "epochs", "n_per_class", "probe", "n_test_per_class",
                                                      "record_every")} == \
        {k: v for k, v in hybrid.items() if k not in ("width", "epochs", "n_per_class", "record_every")}
    hyb = E.EXPERIMENTS["hybrid"].paper
    assert hyb["n_nonlinear"] + hyb["n_linear"] + 1 == 8 and E.EXPERIMENTS["mlp"].paper["depth"] == 8
    with pytest.raises(ValueError, match="unknown experiment"):
        E.get_experiment("nope")
    with pytest.raises(ValueError, match="scale"):
        E.EXPERIMENTS["hybrid"].config("huge")


def test_hybrid_result_contract(hybrid):
    validate_result(hybrid, "hybrid")
    layers = hybrid["layers"]
    assert [r["layer"] for r in layers] == list(range(8))
    assert [r["kind"] for r in layers] == ["input"] + ["nonlinear"] * 3 + ["linear"] * 4
    assert hybrid["arrays"]["projection"].shape == (8, 6000, 2)
    assert hybrid["summary"]["n_train"] == 6000 and hybrid["summary"]["n_test"] == 10000


def _check_test_split(result):
    """The layerwise runs also measure the test split: the same layers and metrics, less compressed."""
    train, test = result["layers"], result["test_layers"]
    assert [r["layer"] for r in test] == [r["layer"] for r in train]
    assert [r["kind"] for r in test] == [r["kind"] for r in train]
    assert {"compression", "discrimination", "nc1", "numerical_rank"} <= set(test[0])
    assert "probe_accuracy" not in test[0]
    c_tr, c_te = _column(result, "compression"), np.array([r["compression"] for r in test])
    assert abs(c_te[0] / c_tr[0] - 1) < 0.1          # the input: images of the same classes
    assert np.all(c_te[1:] > c_tr[1:])                 # every layer compresses its training images more


def test_layerwise_runs_also_measure_the_test_split(hybrid, mlp):
    _check_test_split(hybrid)
    _check_test_split(mlp)


def _column(result, key):
    return np.array([r[key] for r in result["layers"]], dtype=float)


def test_hybrid_separates_early_then_compresses_through_the_linear_layers(hybrid):
    # Fashion-MNIST is not linearly separable at the input; the first nonlinear blocks make it so (probe at least
    # 99 % from layer 2), and C falls through the blocks and the first linear layers, then flattens.
    probe, rank, c, d = (_column(hybrid, k)
                         for k in ("probe_accuracy", "numerical_rank", "compression", "discrimination"))
    assert probe[0] < 0.9
    first_full = int(np.argmax(probe >= 0.99))
    assert probe[first_full] >= 0.99 and first_full <= 2 and np.all(probe[first_full:] >= 0.985)
    assert np.all(np.diff(c[:6]) < 0) and c[-1] < 0.02 * c[0]
    linear = c[3:]  # the last nonlinear output, then the four linear layers
    assert linear[0] / linear[-1] >= 3.0, f"the linear layers do not compress: {linear}"
    ratio, r2 = fit_geometric_rate(linear, list(range(3, 8)))
    assert ratio < 0.8 and hybrid["summary"]["linear_r2"] == pytest.approx(r2)
    assert np.all(np.diff(rank[3:]) < 0) and rank[-1] <= 12  # the linear layers bring the rank down to ~K
    assert rank[1] <= 256 < rank[0]  # width 256 caps the rank below the input's: it cannot rise here
    # D rises through the blocks and the first linear layer, then stays high (flat to a few hundredths: which of
    # the later layers is highest depends on float32 rounding, so on the CPU model)
    assert np.all(np.diff(d[:5]) > 0) and d[4:].min() > 0.9


def test_mlp_rank_rises_then_falls_while_probe_saturates_later(mlp):
    validate_result(mlp, "mlp")
    assert [r["kind"] for r in mlp["layers"]] == ["input"] + ["nonlinear"] * 7
    probe, rank, c = (_column(mlp, k) for k in ("probe_accuracy", "numerical_rank", "compression"))
    assert probe[0] < 0.9 and np.all(np.diff(probe) > 0)  # separability grows layer by layer ...
    first_full = int(np.argmax(probe >= 0.99))
    assert probe[first_full] >= 0.99 and first_full >= 4  # ... and saturates later than in the hybrid
    peak = int(np.argmax(rank[1:])) + 1
    assert peak >= 2 and rank[peak] > rank[1]  # the hidden rank rises after the first block ...
    assert np.all(np.diff(rank[peak:]) < 0) and rank[-1] < 0.6 * rank[peak]  # ... then falls
    assert c[-1] < 0.2 * c[1] and np.all(np.diff(c[:6]) < 0)


def test_depths_default_initialisation_compresses_at_every_depth(depths):
    assert [d["depth"] for d in depths["depths"]] == [5, 7, 9]
    for d in depths["depths"]:
        c = np.array([r["compression"] for r in d["layers"]])
        assert len(c) == d["depth"]  # the input and the L - 1 hidden layers
        assert np.all(np.diff(c) < 0), f"L = {d['depth']}: C_l not decreasing: {c}"
        assert d["r2"] >= 0.9 and d["ratio"] < 0.95, d
        assert d["final_loss"] < 0.15  # 30 epochs at book scale: not trained to interpolation
    deepest = np.array([r["compression"] for r in depths["depths"][-1]["layers"]])
    assert deepest[0] / deepest[-1] >= 5.0


def test_transfer_in_the_authors_design(transfer):
    """Separately pretrained networks per head depth, with the authors' initialisation and 30 epochs: the ridge-1e-2
    transfer accuracy hardly depends on the head depth (the authors' +7 points do not appear), a strongly regularised
    probe does rise with it (the deep heads have not trained)."""
    validate_result(transfer, "transfer", require_transfer=True)
    heads = transfer["heads"]
    assert [h["head_layers"] for h in heads] == [1, 2, 3, 4, 5] and transfer["summary"]["mode"] == "grow"
    acc = np.array(transfer["transfer_accuracy"])
    assert np.all((acc > 0.85) & (acc < 0.95)) and acc.max() - acc.min() < 0.03
    strong = np.array([h["transfer_accuracy_by_ridge"]["1"] for h in heads])
    assert strong[-1] - strong[0] > 0.03 and np.all(strong < acc + 1e-9)
    plain = np.array([h["transfer_accuracy_by_ridge"]["1e-08"] for h in heads])
    assert np.max(np.abs(plain - acc)) < 0.01  # ridge 1e-2 and no ridge agree
    comp = np.array([h["compression"] for h in heads])
    assert np.all(comp > 0) and comp[-1] > 5 * comp[:-1].max()  # with h = 5 the extractor's classes stay apart
    for h in heads:  # the loss curve of each head depth's own network, ending at its final loss
        assert len(h["losses"]) == SHORT["epochs"] and h["losses"][-1] == h["final_loss"]
    assert len({h["losses"][0] for h in heads}) == len(heads)  # one network per head depth


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
