"""pnc.stats: the public state protocol of ClassStats (state_dict / load_state_dict / merge), which copy(), pickling
and pnc.distributed use, checked against statistics computed from their definitions."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import pnc
from pnc import metrics, stats


def _data(seed: int = 0, n: int = 120, k: int = 4, d: int = 5, offset: float = 0.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.normal(size=(n, d)) + 2.0 * np.eye(k, d)[y] + offset
    return x, y


def _reference(x: np.ndarray, y: np.ndarray) -> dict:
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(axis=0) for c in classes])
    centred = [x[y == c] - means[i] for i, c in enumerate(classes)]
    return {"classes": classes, "counts": np.array([np.sum(y == c) for c in classes]), "means": means,
            "class_sum_squares": np.array([np.sum(c**2) for c in centred]),
            "scatter": sum(c.T @ c for c in centred)}


def test_the_public_import_paths_are_one_class():
    assert pnc.ClassStats is stats.ClassStats is metrics.ClassStats
    assert metrics.BETWEEN_CENTRES is stats.BETWEEN_CENTRES and metrics.check_centre is stats.check_centre


@pytest.mark.parametrize("track", [True, False])
def test_state_dict_holds_the_sufficient_statistics(track):
    x, y = _data(offset=1e3)
    st = pnc.ClassStats(track_covariance=track)
    for part in np.array_split(np.arange(len(y)), 7):
        st.update(x[part], y[part])
    state = st.state_dict()
    assert sorted(state) == sorted(pnc.ClassStats.STATE_KEYS)
    ref = _reference(x, y)
    assert state["dim"] == 5 and state["track_covariance"] is track
    np.testing.assert_array_equal(state["classes"], ref["classes"])
    np.testing.assert_array_equal(state["counts"], ref["counts"])
    np.testing.assert_allclose(state["means"], ref["means"], rtol=1e-12)
    np.testing.assert_allclose(state["class_sum_squares"], ref["class_sum_squares"], rtol=1e-9)
    if track:
        np.testing.assert_allclose(state["scatter"], ref["scatter"], rtol=1e-9, atol=1e-9)
    else:
        assert state["scatter"] is None
    state["means"][:] = 0.0  # a copy: the object is unchanged
    assert np.abs(st.means).max() > 1.0


def test_a_round_trip_gives_the_same_metrics_and_keeps_streaming():
    x, y = _data(seed=1)
    st = pnc.ClassStats().update(x[:60], y[:60])
    back = pnc.ClassStats().load_state_dict(st.state_dict())
    assert metrics.nc1(back) == metrics.nc1(st) and metrics.cdnv(back) == metrics.cdnv(st)
    back.update(x[60:], y[60:])
    whole = pnc.ClassStats().update(x, y)
    assert metrics.nc1(back) == pytest.approx(metrics.nc1(whole), rel=1e-12)


def test_merge_and_merge_state_equal_one_pass():
    x, y = _data(seed=2, offset=-50.0)
    a = pnc.ClassStats().update(x[:50], y[:50])
    b = pnc.ClassStats().update(x[50:], y[50:])
    whole = pnc.ClassStats().update(x, y)
    merged = a.merge(b)
    in_place = a.copy().merge_state(b.state_dict())
    for st in (merged, in_place):
        np.testing.assert_allclose(st.means, whole.means, rtol=1e-12)
        assert metrics.compression(st) == pytest.approx(metrics.compression(whole), rel=1e-12)
    assert a.n_samples == 50  # merge made a new object


def test_copy_and_pickle_go_through_the_state_and_are_independent():
    x, y = _data(seed=3)
    st = pnc.ClassStats(dim=5).update(x[:40], y[:40])  # batches still pending inside
    twin = pickle.loads(pickle.dumps(st))
    other = st.copy()
    st.update(x[40:], y[40:])
    assert twin.n_samples == other.n_samples == 40 and st.n_samples == len(y)
    np.testing.assert_array_equal(twin.state_dict()["scatter"], other.state_dict()["scatter"])
    twin.reset()
    assert twin.dim == 5  # the constructor's dim survives the round trip


def test_means_are_a_read_only_view():
    st = pnc.ClassStats().update(*_data())
    with pytest.raises(ValueError, match="read-only"):
        st.means[0, 0] = 1.0


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.pop("counts"), r"state misses \['counts'\]"),
        (lambda s: s.update(counts=s["counts"][:-1]), "one entry per class"),
        (lambda s: s.update(classes=s["classes"][::-1].copy()), "sorted and distinct"),
        (lambda s: s.update(scatter=None), "tracks the covariance but its scatter"),
        (lambda s: s.update(dim=None), "holds classes but no dim"),
        (lambda s: s.update(means=s["means"][:, :2]), r"means must be K×d = 4×5, got shape \(4, 2\)"),
    ],
)
def test_load_state_dict_refuses_a_broken_state(change, message):
    state = pnc.ClassStats().update(*_data()).state_dict()
    change(state)
    with pytest.raises(ValueError, match=message):
        pnc.ClassStats().load_state_dict(state)


def test_load_state_dict_checks_the_dimension():
    state = pnc.ClassStats().update(*_data()).state_dict()
    with pytest.raises(ValueError, match="feature dimension changed: expected 3, got 5"):
        pnc.ClassStats(dim=3).load_state_dict(state)
    with pytest.raises(ValueError, match="state must be a dict"):
        pnc.ClassStats().load_state_dict([1, 2])
