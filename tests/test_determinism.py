"""Determinism: the same seeds reproduce training and metrics bit for bit on CPU, within and across processes.

tests/test_train.py already checks plain full-batch GD losses; here: GD and SGD (momentum, weight decay,
minibatch shuffling) down to every weight, the recorded layerwise history, streaming metrics and
``pnc.measure``, and a second Python process.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import pnc
from pnc import metrics as M
from pnc.data import gaussian_mixture, orthogonal_dataset
from pnc.models import MLP, DeepLinearNetwork
from pnc.train import TrainConfig, train

CONFIGS = {
    "gd": TrainConfig(optimizer="gd", lr=0.05, epochs=25, alpha=10.0, record_every=5, weight_decay=1e-4),
    "sgd": TrainConfig(optimizer="sgd", lr=0.05, epochs=6, batch_size=7, momentum=0.9, weight_decay=1e-4,
                       alpha=10.0, record_every=3, seed=11),
}


def run_once(kind: str, seed: int = 3) -> dict:
    """Train a small DLN and measure it; everything a run produces, as exact bytes/reprs."""
    X, y = orthogonal_dataset(8, 3, 24, seed=seed)
    model = DeepLinearNetwork(24, 16, 3, depth=4, xi=0.4, seed=seed)
    res = train(model, X, y, CONFIGS[kind])
    report = pnc.measure(model, (X, y), metrics=("compression", "discrimination", "nc1", "cdnv", "rank"),
                         batch_size=5)
    st = M.ClassStats()
    for i in range(0, len(y), 6):
        st.update(model.forward_features(X[i : i + 6])[-1].detach(), y[i : i + 6])
    return {
        "losses": [float(v).hex() for v in res.losses],
        "history": json.dumps(res.history, sort_keys=True),
        "weights": hashlib.sha256(b"".join(w.detach().numpy().tobytes() for w in model.weights())).hexdigest(),
        "report": json.dumps(report.to_dict(), sort_keys=True),
        "stats": hashlib.sha256(st.means.tobytes() + st.sigma_w().tobytes()).hexdigest(),
        "metrics": [float(M.compression(st)).hex(), float(M.nc1(st)).hex(), float(M.cdnv(st)).hex()],
    }


@pytest.mark.parametrize("kind", ["gd", "sgd"])
def test_training_and_metrics_are_bitwise_reproducible(kind):
    a, b = run_once(kind), run_once(kind)
    assert a == b
    assert len(a["losses"]) == CONFIGS[kind].epochs


def test_sgd_shuffling_depends_on_the_config_seed():
    X, y = orthogonal_dataset(8, 3, 24, seed=0)
    weights = []
    for seed in (0, 0, 1):
        model = DeepLinearNetwork(24, 16, 3, depth=3, xi=0.4, seed=0)
        train(model, X, y, CONFIGS["sgd"].replace(seed=seed, record_every=0))
        weights.append(torch.cat([w.detach().flatten() for w in model.weights()]))
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


def test_nonlinear_model_with_batchnorm_is_reproducible():
    X, y = gaussian_mixture(10, 3, 12, seed=2)
    outs = []
    for _ in range(2):
        model = MLP(12, 16, 3, depth=3, seed=5)
        res = train(model, X, y, TrainConfig(optimizer="sgd", lr=0.05, epochs=3, batch_size=8, seed=4))
        rep = pnc.measure(model, (X, y), metrics=("compression", "discrimination"))
        outs.append((res.losses, rep.to_dict(), [p.detach().clone() for p in model.parameters()]))
    assert outs[0][0] == outs[1][0] and outs[0][1] == outs[1][1]
    assert all(torch.equal(p, q) for p, q in zip(outs[0][2], outs[1][2], strict=True))


def test_metrics_do_not_depend_on_call_history():
    """Recomputing metrics (fresh stats, same batches) after other work gives identical bits."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    x = rng.normal(size=(200, 9)) + y[:, None]
    first = [M.compression(x, y), M.nc1(x, y), M.discrimination(x, y), M.numerical_rank(x)]
    M.nc1(rng.normal(size=(50, 9)), rng.integers(0, 3, 50))  # unrelated work in between
    second = [M.compression(x, y), M.nc1(x, y), M.discrimination(x, y), M.numerical_rank(x)]
    assert first == second


def test_a_second_process_reproduces_the_run():
    code = (
        "import json, sys; sys.path.insert(0, {path!r}); import test_determinism as t; "
        "print(json.dumps(t.run_once('sgd')))"
    ).format(path=str(__import__("pathlib").Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == run_once("sgd")
