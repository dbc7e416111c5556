"""Train versus held-out: the per-layer table of a trained network on its training split and on unseen samples.

The compression law (chapter 4) is a statement about the *training* features. :func:`train_test_tables` measures a
trained network's layerwise table on both splits with the public API (:func:`pnc.measure`), so the two tables are
computed the same way and differ only in the samples; :func:`generalisation_gap` compares them layer by layer.

The ``hybrid`` and ``mlp`` experiments of :mod:`pnc.book.experiments` call its :func:`split_table` on the test split
when they run and store the result next to the training table (``result["test_layers"]``), so chapter 6 reads both from
the result cache. :func:`recipe_heldout` does the same for chapter 4's deep linear network, whose trained weights
:class:`pnc.book.recipes.RecipeResult` keeps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pnc._checks import check_int
from pnc.book.experiments import check_split, split_table
from pnc.data import orthogonal_dataset
from pnc.models import DeepLinearNetwork
from pnc.report import LayerReport

__all__ = ["generalisation_gap", "last_compressing_layer", "recipe_heldout", "recipe_network", "split_table",
           "train_test_tables"]


def train_test_tables(model: torch.nn.Module, train: Any, test: Any, **options: Any) -> tuple[LayerReport, LayerReport]:
    """The layerwise tables of a trained ``model`` on its training split and on a held-out split.

    ``train`` and ``test`` are ``(X, y)`` pairs with inputs of the same shape; both tables come from
    :func:`split_table` with the same ``options`` (``metrics``, ``kinds``, ``device``, ``batch_size``; its
    defaults), so the same layers and the same metrics. Raises ``ValueError`` for a model that is not a
    ``torch.nn.Module`` or splits that do not fit it.
    """
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    Xtr, ytr = check_split(train, "train")
    Xte, yte = check_split(test, "test")
    if Xtr.shape[1:] != Xte.shape[1:]:
        raise ValueError(f"train and test samples differ in dimension: {tuple(Xtr.shape[1:])} and "
                         f"{tuple(Xte.shape[1:])}")
    unseen = sorted(set(torch.unique(yte).tolist()) - set(torch.unique(ytr).tolist()))
    if unseen:
        raise ValueError(f"test holds classes the training split does not: {unseen}")
    return split_table(model, Xtr, ytr, **options), split_table(model, Xte, yte, **options)


def _as_table(table: Any, name: str) -> LayerReport:
    try:
        return LayerReport.from_dict(table)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def generalisation_gap(train: Any, test: Any, key: str = "compression") -> np.ndarray:
    """Per layer, how the held-out value of ``key`` compares with the training one.

    For ``compression`` the ratio ``C_l(test) / C_l(train)`` (how many times less compressed the held-out classes
    are); for any other column the difference ``train - test`` (e.g. the discrimination lost on held-out samples).
    ``train`` and ``test`` are :class:`pnc.LayerReport` tables, or the row lists results store, of the same layers.
    """
    a, b = _as_table(train, "train"), _as_table(test, "test")
    if len(a) != len(b):
        raise ValueError(f"train and test tables list different layers ({len(a)} and {len(b)} rows)")
    for name, t in (("train", a), ("test", b)):
        if key not in t.columns:
            raise ValueError(f"the {name} table has no column {key!r}; columns: {list(t.columns)}")
    if not np.array_equal(a.column("layer"), b.column("layer")):
        raise ValueError("train and test tables list different layers")
    u, v = a.column(key), b.column(key)
    return v / u if key == "compression" else u - v


def last_compressing_layer(compression: Any, start: int = 1) -> int:
    """The layer where compression first stops: the last ``l`` of the run ``C_start > C_{start+1} > ... > C_l``.

    ``compression`` holds ``C_0, C_1, ...`` (a column, or a sequence); the result is ``len - 1`` when ``C_l`` falls at
    every layer from ``start`` on, and ``start`` when it does not fall even once.
    """
    c = np.asarray(compression, dtype=np.float64).ravel()
    if c.size < 2 or not np.all(np.isfinite(c)):
        raise ValueError(f"compression must hold at least 2 finite values, got {c.size}")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < c.size:
        raise ValueError(f"start must be a layer index in [0, {c.size - 1}], got {start!r}")
    layer = int(start)
    while layer + 1 < c.size and c[layer + 1] < c[layer]:
        layer += 1
    return layer


def recipe_network(result: Any) -> torch.nn.Module:
    """The trained deep linear network of a :class:`pnc.book.recipes.RecipeResult`, rebuilt from its weights."""
    weights = getattr(result, "weights", None)
    config = getattr(result, "config", None)
    if not weights or not isinstance(config, dict):
        raise ValueError(f"result must be a RecipeResult with trained weights, got {type(result).__name__}")
    net = DeepLinearNetwork(in_dim=int(config["d"]), width=int(config["width"]), n_classes=int(config["K"]),
                            depth=int(config["L"]), dtype=torch.float64)
    layers = net.linear_layers()
    if len(layers) != len(weights):
        raise ValueError(f"result has {len(weights)} weight matrices for a network of depth {len(layers)}")
    with torch.no_grad():
        for layer, w in zip(layers, weights, strict=True):
            layer.weight.copy_(torch.as_tensor(np.asarray(w), dtype=torch.float64))
    return net


def recipe_heldout(result: Any, test_seed: int) -> tuple[LayerReport, LayerReport]:
    """Train and held-out tables (``compression``, ``discrimination``) of chapter 4's recipe network.

    The training split is the recipe's own :func:`pnc.data.orthogonal_dataset` (seed ``result.config["seed"]``);
    the held-out split is drawn the same way with ``test_seed``, which must differ. Such samples are nearly
    orthonormal among themselves but *not* orthogonal to the training ones, and their labels share nothing with the
    training labels but the names: the recipe's classes have no structure that a new sample could follow.
    """
    config = getattr(result, "config", None)
    if not isinstance(config, dict) or config.get("data") != "orthogonal":
        raise ValueError("recipe_heldout needs a run_recipe result (trained on pnc.data.orthogonal_dataset)")
    test_seed = check_int("test_seed", test_seed, 0)
    if test_seed == int(config["seed"]):
        raise ValueError(f"test_seed must differ from the training seed {config['seed']} (else test = train)")
    n, K, d = int(config["n"]), int(config["K"]), int(config["d"])
    perturbation = float(config.get("perturbation", 1.0))
    train = orthogonal_dataset(n, K, d, perturbation=perturbation, seed=int(config["seed"]))
    test = orthogonal_dataset(n, K, d, perturbation=perturbation, seed=test_seed)
    return train_test_tables(recipe_network(result), train, test, metrics=("compression", "discrimination"))
