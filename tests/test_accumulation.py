"""ClassStats' streaming accumulation: shifted device sums folded into float64, against direct float64 formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pnc
import pnc.stats
from pnc import metrics as M

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def reference(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Means, centred sums of squares and the within-class scatter by the textbook two-pass formulas."""
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(0) for c in classes])
    centred = x - means[np.searchsorted(classes, y)]
    ss = np.array([np.sum(centred[y == c] ** 2) for c in classes])
    return {"means": means, "ss": ss, "scatter": centred.T @ centred}


def data(n: int = 600, d: int = 12, k: int = 5, offset: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.normal(size=(k, d))[y] * 3 + rng.normal(size=(n, d)) + offset
    return x, y


def streamed(x, y, batch: int, **kwargs) -> M.ClassStats:
    st = M.ClassStats(**kwargs)
    for i in range(0, len(y), batch):
        st.update(x[i : i + batch], y[i : i + batch])
    return st


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("offset", [0.0, 1e4, -1e6])
@pytest.mark.parametrize("batch", [7, 64, 600])
def test_streaming_matches_the_float64_two_pass_formulas(offset, batch):
    x, y = data(offset=offset)
    ref = reference(x, y)
    ref_centred = reference(x - offset, y)  # the offset-free cloud: what the statistics must not lose to rounding
    st = streamed(x, y, batch)
    assert rel(st.means, ref["means"]) < 1e-13
    # the offset data carry offset·eps of rounding each; centred sums must keep that accuracy, not offset²·eps
    tol = 1e-12 * max(1.0, abs(offset))
    assert rel(st.class_sum_squares, ref_centred["ss"]) < tol
    assert rel(st.sigma_w() * st.n_samples, ref_centred["scatter"]) < tol


def test_a_large_array_reduced_in_chunks_equals_small_batches(monkeypatch):
    x, y = data(n=2000, d=40)
    monkeypatch.setattr(pnc.stats, "_CHUNK_ELEMENTS", 40 * 300)  # chunks of 300 rows
    one = M.ClassStats().update(x, y)
    many = streamed(x, y, 50)
    assert rel(one.sigma_w(), many.sigma_w()) < 1e-13
    assert rel(one.class_sum_squares, many.class_sum_squares) < 1e-13


@pytest.mark.parametrize("track", [False, True])
def test_batches_passing_through_small_scratch_blocks_match_the_two_pass_formulas(monkeypatch, track):
    """On the CPU a batch is shifted and summed block by block: many blocks, a partial last one, and batches whose
    class sets change (classes leaving, returning and first appearing mid-stream) give the reference statistics."""
    x, y = data(n=900, k=6, offset=1e4)
    y = np.where(np.arange(900) < 300, y % 3, y)  # only classes 0-2 in the first 300 samples
    monkeypatch.setattr(pnc.stats, "_BLOCK_ELEMENTS", 12 * 7)  # blocks of 7 rows: 50 = 7 full blocks and 1 row
    st = streamed(x, y, 50, track_covariance=track)
    ref, ref_centred = reference(x, y), reference(x - 1e4, y)
    assert rel(st.means, ref["means"]) < 1e-13
    assert rel(st.class_sum_squares, ref_centred["ss"]) < 1e-12 * 1e4
    if track:
        assert rel(st.sigma_w() * st.n_samples, ref_centred["scatter"]) < 1e-12 * 1e4
    monkeypatch.undo()
    whole = streamed(x, y, 50, track_covariance=track)  # one block per batch
    assert rel(st.class_sum_squares, whole.class_sum_squares) < 1e-14


def test_the_scatter_buffer_is_drained_whenever_a_result_is_read(monkeypatch):
    x, y = data(n=900)
    monkeypatch.setattr(pnc.stats, "_BUFFER_ELEMENTS", 12 * 100)  # the buffer holds 100 rows: batches of 30 fill it
    st = M.ClassStats()
    for i in range(0, 450, 30):
        st.update(x[i : i + 30], y[i : i + 30])
    half = st.sigma_w().copy()  # read mid-stream: folds and drains
    for i in range(450, 900, 30):
        st.update(x[i : i + 30], y[i : i + 30])
    assert rel(half * 450, reference(x[:450], y[:450])["scatter"]) < 1e-12
    assert rel(st.sigma_w() * 900, reference(x, y)["scatter"]) < 1e-12


def test_classes_appearing_late_and_merge_order():
    x, y = data(n=500, k=6)
    order = np.argsort(y, kind="stable")  # class 5 appears only in the last batches
    a = streamed(x[order], y[order], 40)
    b = streamed(x, y, 40)
    assert np.array_equal(a.classes, b.classes)
    assert rel(a.sigma_w(), b.sigma_w()) < 1e-12
    c = streamed(x[:250], y[:250], 40).merge(streamed(x[250:], y[250:], 40))
    assert rel(c.sigma_w(), b.sigma_w()) < 1e-12


def test_compensated_float32_accumulation_stays_near_float64(monkeypatch):
    """Devices without float64 (Apple's MPS) accumulate float32 sums with Kahan compensation; the path is forced
    here on the CPU: over 400 batches the sums stay at float32 resolution."""
    x, y = data(n=40_000, d=8, offset=50.0)
    x32 = x.astype(np.float32)
    exact = streamed(x32.astype(np.float64), y, 100)
    monkeypatch.setattr(M.ClassStats, "_compensated", True)
    comp = streamed(x32, y, 100)
    assert comp._pending.dtype == torch.float32
    err = rel(comp.means, exact.means)
    assert err < 1e-6
    assert abs(M.compression(comp) / M.compression(exact) - 1) < 1e-4
    assert abs(M.nc1(comp) / M.nc1(exact) - 1) < 1e-4


def test_errors_name_the_problem():
    x, y = data()
    with pytest.raises(ValueError, match="NaN or inf"):
        M.ClassStats().update(np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), y)
    with pytest.raises(ValueError, match="rescale"):
        M.ClassStats().update(x * 1e150, y)
    with pytest.raises(ValueError, match="length mismatch"):
        M.ClassStats().update(x, y[:-1])
    st = M.ClassStats().update(x, y)
    with pytest.raises(ValueError, match="dimension changed"):
        st.update(x[:, :3], y)


@CUDA
def test_cuda_features_are_reduced_on_the_gpu_and_match_the_cpu():
    x, y = data(n=3000, d=64, offset=100.0)
    xt = torch.tensor(x, dtype=torch.float32)
    cpu = streamed(xt, y, 256)
    st = M.ClassStats()
    for i in range(0, 3000, 256):
        st.update(xt[i : i + 256].cuda(), y[i : i + 256])
    assert st._pending.sum.device.type == "cuda"  # the sums live on the GPU until a result is read
    assert rel(st.sigma_w(), cpu.sigma_w()) < 1e-10
    assert rel(st.means, cpu.means) < 1e-12


@CUDA
def test_measure_on_cuda_equals_measure_on_cpu():
    torch.manual_seed(0)
    model = pnc.models.MLP(20, 32, 4, depth=3, seed=0).eval()
    x = torch.randn(500, 20)
    y = torch.randint(0, 4, (500,))
    on_cpu = pnc.measure(model, (x, y), metrics="all")
    on_gpu = pnc.measure(model.cuda(), (x.cuda(), y.cuda()), metrics="all")
    for col in ("compression", "discrimination", "nc1", "cdnv"):
        np.testing.assert_allclose(on_gpu.column(col), on_cpu.column(col), rtol=1e-5)  # float32 forward passes
    np.testing.assert_array_equal(on_gpu.column("numerical_rank"), on_cpu.column("numerical_rank"))
