"""Hypothesis properties: invariances of the metrics and order-independence of streaming."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pnc import metrics as M

SETTINGS = settings(max_examples=40, deadline=None)
RTOL = 1e-7


@st.composite
def datasets(draw):
    """Random (x, y): 2–5 classes with arbitrary distinct labels, 2–12 samples each, dimension 2–7."""
    k = draw(st.integers(2, 5))
    d = draw(st.integers(2, 7))
    labels = draw(st.lists(st.integers(-50, 500), min_size=k, max_size=k, unique=True))
    counts = draw(st.lists(st.integers(2, 12), min_size=k, max_size=k))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * draw(st.sampled_from([0.5, 1.0, 3.0])) + rng.normal(size=d)
    y = np.repeat(np.array(labels), counts)
    x = centres[np.repeat(np.arange(k), counts)] + rng.normal(size=(len(y), d))
    return x, y, rng


def summary(x, y):
    return np.array(
        [M.compression(x, y), M.discrimination(x, y), M.nc1(x, y), M.cdnv(x, y), M.nc2(x, y).etf_error]
    )


def assert_close(a, b, rtol=RTOL):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12)


@SETTINGS
@given(datasets(), st.floats(1e-3, 1e3), st.booleans())
def test_scale_invariance(data, c, negative):
    x, y, _ = data
    c = -c if negative else c
    assert_close(summary(c * x, y), summary(x, y))


@SETTINGS
@given(datasets())
def test_rotation_invariance(data):
    x, y, rng = data
    q = np.linalg.qr(rng.normal(size=(x.shape[1], x.shape[1])))[0]
    xr = x @ q.T
    assert_close(summary(xr, y), summary(x, y))
    assert M.numerical_rank(xr) == M.numerical_rank(x)
    assert_close(M.effective_rank(xr), M.effective_rank(x))
    assert_close(M.rate_reduction(xr, y, eps=0.5), M.rate_reduction(x, y, eps=0.5))


@SETTINGS
@given(datasets())
def test_sample_permutation_invariance(data):
    x, y, rng = data
    p = rng.permutation(len(y))
    assert_close(summary(x[p], y[p]), summary(x, y))
    assert_close(M.coding_rate(x[p], eps=1.0), M.coding_rate(x, eps=1.0))
    assert_close(M.class_coding_rate(x[p], y[p], eps=1.0), M.class_coding_rate(x, y, eps=1.0))


@SETTINGS
@given(datasets(), st.data())
def test_label_renaming_invariance(data, draw):
    x, y, _ = data
    old = np.unique(y)
    k = len(old)
    new = np.array(draw.draw(st.lists(st.integers(0, 10**6), min_size=k, max_size=k, unique=True)))
    y2 = new[np.searchsorted(old, y)]
    assert_close(summary(x, y2), summary(x, y))
    assert_close(M.rate_reduction(x, y2, eps=0.5), M.rate_reduction(x, y, eps=0.5))


@SETTINGS
@given(datasets(), st.data())
def test_streaming_any_split_any_merge_order(data, draw):
    x, y, rng = data
    n = len(y)
    cuts = sorted(draw.draw(st.sets(st.integers(1, n - 1), max_size=6)))
    splits = zip(np.split(x, cuts), np.split(y, cuts), strict=True)
    parts = [M.ClassStats().update(xb, yb) for xb, yb in splits]
    order = draw.draw(st.permutations(range(len(parts))))
    acc = M.ClassStats()
    for i in order:
        acc = acc.merge(parts[i]) if draw.draw(st.booleans()) else parts[i].merge(acc)
    one = M.ClassStats().update(x, y)
    np.testing.assert_array_equal(acc.counts, one.counts)
    assert_close(acc.means, one.means, rtol=1e-9)
    assert_close(acc.sigma_w(), one.sigma_w(), rtol=1e-9)
    assert_close(summary_stats(acc), summary_stats(one), rtol=1e-9)


def summary_stats(s):
    return np.array([M.compression(s), M.discrimination(s), M.nc1(s), M.cdnv(s)])


@SETTINGS
@given(datasets())
def test_ranges(data):
    x, y, _ = data
    c, d, n1, cd, _ = summary(x, y)
    assert c >= 0 and n1 >= 0 and cd >= 0
    assert 0.0 <= d <= 2.0
    r = M.numerical_rank(x)
    assert 1 <= r <= min(x.shape)
    assert 1.0 - 1e-9 <= M.effective_rank(x) <= min(x.shape) + 1e-9
    assert M.rate_reduction(x, y, eps=0.5) >= -1e-9
