"""The reference harness (in the spirit of torchmetrics' MetricTester): every registered metric, computed through its
registry entry from a ClassStats, against an independent float64 NumPy reference written here from the metric's
definition; the statistics come one-shot, streamed in random batches, merged from two processes' states, from float32
input, after a state_dict (and pickle) round trip, and on CUDA when present.

A metric registered without a reference here fails :func:`test_every_registered_metric_has_a_reference`.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

import pnc
from pnc import metrics as M
from pnc.registry import METRICS, MetricInputs

K, D, N = 5, 7, 400
EPS = 0.5  # the coding rate's distortion ε (MetricInputs' default)
THRESHOLD = 0.95  # the numerical rank's share (MetricInputs' default)


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Imbalanced classes with a common offset and a decaying spectrum; a K×d classifier weight."""
    rng = np.random.default_rng(seed)
    y = rng.choice(K, size=N, p=[0.35, 0.25, 0.2, 0.12, 0.08])
    centres = rng.normal(size=(K, D)) * 3.0
    x = (centres[y] + rng.normal(size=(N, D)) * np.geomspace(2.0, 0.05, D)) + 10.0
    w = centres + 0.3 * rng.normal(size=(K, D))
    return x, y, w


# ---- references from the definitions (float64 NumPy, nothing from pnc) -----------------------------------------


def _parts(x: np.ndarray, y: np.ndarray):
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(axis=0) for c in classes])
    sigma_w = sum((x[y == c] - means[i]).T @ (x[y == c] - means[i]) for i, c in enumerate(classes)) / len(y)
    centred = means - x.mean(axis=0)  # Σ_B centred on the sample mean, unweighted over classes
    sigma_b = centred.T @ centred / len(classes)
    return classes, means, sigma_w, centred, sigma_b


def ref_compression(x, y, w):
    _, _, sigma_w, _, sigma_b = _parts(x, y)
    return (np.trace(sigma_w) / np.trace(sigma_b),)


def ref_discrimination(x, y, w):
    _, means, *_ = _parts(x, y)
    unit = means / np.linalg.norm(means, axis=1, keepdims=True)
    cos = unit @ unit.T
    return (1.0 - cos[np.triu_indices(len(means), 1)].max(),)


def ref_nc1(x, y, w):
    classes, _, sigma_w, _, sigma_b = _parts(x, y)
    lam = np.linalg.eigvalsh(sigma_b)
    pinv = np.linalg.pinv(sigma_b, rcond=1e-10, hermitian=True)
    return (np.trace(sigma_w @ pinv) / len(classes), int(np.sum(lam > 1e-10 * lam.max())))


def ref_nc2(x, y, w):
    classes, _, _, centred, _ = _parts(x, y)
    k = len(classes)
    gram = centred @ centred.T
    etf = (np.eye(k) - np.ones((k, k)) / k) / np.sqrt(k - 1)
    norms = np.linalg.norm(centred, axis=1)
    return (np.linalg.norm(gram / np.linalg.norm(gram) - etf), norms.std() / norms.mean())


def ref_cdnv(x, y, w):
    classes, means, *_ = _parts(x, y)
    var = np.array([np.mean(np.sum((x[y == c] - means[i]) ** 2, axis=1)) for i, c in enumerate(classes)])
    pairs = [(var[i] + var[j]) / (2 * np.sum((means[i] - means[j]) ** 2))
             for i in range(len(classes)) for j in range(len(classes)) if i != j]
    return (np.mean(pairs),)


def ref_rank(x, y, w):
    s = np.linalg.svd(x, compute_uv=False)
    share = np.cumsum(s) / s.sum()
    assert np.min(np.abs(share - THRESHOLD)) > 1e-6, "the data put the 95 % crossing too close to a singular value"
    return (int(np.argmax(share >= THRESHOLD)) + 1,)


def ref_effective_rank(x, y, w):
    s = np.linalg.svd(x, compute_uv=False)
    p = s / s.sum()
    return (np.exp(-np.sum(p * np.log(p))),)


def ref_coding_rate(x, y, w):
    n, d = x.shape
    _, logdet = np.linalg.slogdet(np.eye(d) + d / (n * EPS**2) * x.T @ x)
    return (0.5 * logdet,)


def ref_nc3(x, y, w):
    *_, centred, _ = _parts(x, y)
    return (np.linalg.norm(w / np.linalg.norm(w) - centred / np.linalg.norm(centred)),)


def ref_nc4(x, y, w):
    classes, means, *_ = _parts(x, y)
    nearest = classes[np.argmin(((x[:, None, :] - means[None]) ** 2).sum(axis=2), axis=1)]
    return (np.mean(nearest != classes[np.argmax(x @ w.T, axis=1)]),)


REFERENCES = {
    "compression": ref_compression, "discrimination": ref_discrimination, "nc1": ref_nc1, "nc2": ref_nc2,
    "cdnv": ref_cdnv, "rank": ref_rank, "effective_rank": ref_effective_rank, "coding_rate": ref_coding_rate,
    "nc3": ref_nc3, "nc4": ref_nc4,
}


def _inputs(stats: pnc.ClassStats, x: np.ndarray, w: np.ndarray) -> MetricInputs:
    """The table's inputs; NC4's second pass (the model's predictions are the logits x Wᵀ) reads ``stats``."""
    disagreement = M.nc4(stats, logits=x @ w.T, features=x)
    return MetricInputs(classifier_weight=w, prediction_disagreement=disagreement, coding_rate_eps=EPS,
                        rank_threshold=THRESHOLD)


# ---- how the statistics are obtained ---------------------------------------------------------------------------


def one_shot(x, y, track):
    return pnc.ClassStats(track_covariance=track).update(x, y)


def streamed(x, y, track, seed=1):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    cuts = np.sort(rng.choice(np.arange(1, len(y)), size=12, replace=False))
    st = pnc.ClassStats(track_covariance=track)
    for part in np.split(order, cuts):
        st.update(x[part], y[part])
    return st


def merged(x, y, track):
    """Two processes each stream a random half; their states travel as state_dict()s and are merged."""
    rng = np.random.default_rng(2)
    mine = rng.random(len(y)) < 0.5
    states = [streamed(x[m], y[m], track, seed=3 + i).state_dict() for i, m in enumerate((mine, ~mine))]
    return pnc.ClassStats(track_covariance=track).load_state_dict(states[0]).merge_state(states[1])


def round_trip(x, y, track):
    state = pickle.loads(pickle.dumps(streamed(x, y, track).state_dict()))
    return pickle.loads(pickle.dumps(pnc.ClassStats().load_state_dict(state)))


def float32(x, y, track):
    return streamed(x.astype(np.float32), y, track)


def on_cuda(x, y, track):
    st = pnc.ClassStats(track_covariance=track)
    xt = torch.from_numpy(x).cuda()
    for part in np.array_split(np.arange(len(y)), 5):
        st.update(xt[part], y[part])
    return st


WAYS = {"one_shot": one_shot, "streamed": streamed, "merged": merged, "round_trip": round_trip, "float32": float32,
        "cuda": pytest.param(on_cuda, marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))}


def test_every_registered_metric_has_a_reference():
    assert set(METRICS) == set(REFERENCES)


@pytest.mark.parametrize("way", WAYS.values(), ids=list(WAYS))
@pytest.mark.parametrize("name", list(REFERENCES))
def test_registered_metric_matches_its_reference(name, way):
    x, y, w = _data()
    metric = METRICS[name]
    stats = way(x, y, metric.needs_scatter)  # only what the entry declares: a missing "scatter" fails here
    if way is float32:
        x = x.astype(np.float32).astype(np.float64)  # the reference sees the values the metric saw
    got = tuple(metric.compute(stats, _inputs(stats, x, w)))
    expected = REFERENCES[name](x, y, w)
    assert len(got) == len(expected) == len(metric.columns)
    for column, g, e in zip(metric.columns, got, expected, strict=True):
        if isinstance(e, int | np.integer):
            assert g == e, column
        else:
            assert math.isfinite(g) and g == pytest.approx(e, rel=1e-8, abs=1e-12), column
