"""Collapse at vocabulary scale (issue #28): the tiled K×K metrics equal an untiled float64 reference, a tiny tile
equals one tile, classes with a single sample, and tens of thousands of classes through ClassStats, the reports,
`measure` and the command line. Fast: a few seconds in all."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT
from torch import nn

import pnc
from pnc import metrics as M
from pnc.cli import main as cli_main

sys.path.insert(0, str(ROOT))
from benchmarks.vocab_bench import untiled_cdnv, untiled_discrimination, untiled_nc2  # noqa: E402  the untiled baseline


def many_classes(k: int, d: int, seed: int = 0, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """K classes with 1 to 4 samples each (some classes have a single sample), d features."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), rng.integers(1, 5, size=k))
    x = offset + 3.0 * rng.standard_normal((k, d))[y] + rng.standard_normal((y.size, d))
    return x, y


def test_cdnv_nc2_d_equal_the_untiled_reference_at_k_2000():
    x, y = many_classes(2_000, 32, offset=2.0)
    st = M.ClassStats(track_covariance=False).update(x, y)
    assert (st.counts == 1).any() and st.num_classes == 2_000
    t = M.pairwise_tile_size()
    assert t < 2_000  # the default tile is smaller than K here: several tiles
    assert M.cdnv(st) == pytest.approx(untiled_cdnv(st), rel=1e-12, abs=0)
    for centre in M.BETWEEN_CENTRES:
        assert M.nc2(st, between_centre=centre).etf_error == pytest.approx(untiled_nc2(st, centre), rel=1e-12, abs=0)
    assert M.discrimination(st) == pytest.approx(untiled_discrimination(st), rel=1e-12, abs=0)
    small = M.ClassStats(track_covariance=False).update(x[: 3 * 64], y[: 3 * 64])  # K < d: NC2 through the K×K Gram
    assert M.nc2(small).etf_error == pytest.approx(untiled_nc2(small), rel=1e-12, abs=0)


def test_a_tiny_tile_gives_the_result_of_one_tile():
    x, y = many_classes(150, 8, seed=1)
    st = M.ClassStats(track_covariance=False).update(x, y)
    for tiny in (1, 7):
        assert M.cdnv(st, tile_size=tiny) == pytest.approx(M.cdnv(st, tile_size=10_000), rel=1e-13, abs=0)
        assert M.discrimination(st, tile_size=tiny) == pytest.approx(M.discrimination(st, tile_size=10_000),
                                                                     rel=1e-13, abs=0)
        np.testing.assert_array_equal(M.nearest_class_mean(st, x[:100], tile_size=tiny),
                                      M.nearest_class_mean(st, x[:100], tile_size=10_000))
    gm = st.global_mean
    mc = st.means - gm
    direct = st.classes[np.argmin(np.einsum("ij,ij->i", mc, mc) - 2.0 * (x[:100] - gm) @ mc.T, axis=1)]
    np.testing.assert_array_equal(M.nearest_class_mean(st, x[:100], tile_size=7), direct)


def test_close_pairs_in_other_tiles_are_recomputed_and_coinciding_means_named():
    rng = np.random.default_rng(2)
    centres = 1e6 + rng.standard_normal((40, 4))  # a large common offset: distances far below the norms
    centres[33] = centres[2] + 1e-9  # a close pair in different tiles of 8 classes
    y = np.repeat(np.arange(40), 2)
    x = centres[y] + 1e-3 * rng.standard_normal((80, 4))
    x[y == 33] = x[y == 2] + 1e-9  # same spread as class 2: the pair's distance is the offset
    st = M.ClassStats(track_covariance=False).update(x, y)
    assert M.cdnv(st, tile_size=8) == pytest.approx(untiled_cdnv(st), rel=1e-12)
    x[y == 33] = x[y == 2]
    st = M.ClassStats(track_covariance=False).update(x, y)
    with pytest.raises(ValueError, match="classes 2 and 33 coincide"):
        M.cdnv(st, tile_size=8)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "64"])
def test_a_bad_tile_size_is_a_value_error_naming_the_option(bad):
    x, y = many_classes(20, 3)
    with pytest.raises(ValueError, match="tile_size"):
        M.cdnv(x, y, tile_size=bad)
    with pytest.raises(ValueError, match="tile_size"):
        M.discrimination(x, y, tile_size=bad)
    with pytest.raises(ValueError, match="tile_size"):
        pnc.report_from_features([x], y, tile_size=bad)
    with pytest.raises(ValueError, match="tile_size"):
        pnc.measure(nn.Linear(3, 2), (torch.as_tensor(x, dtype=torch.float32), y), tile_size=bad)


def test_classes_with_a_single_sample_have_variance_zero():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 6))
    y = np.arange(50)  # every class a single sample
    st = M.ClassStats().update(x, y)
    np.testing.assert_array_equal(st.class_variances, 0.0)
    assert M.compression(st) == 0.0 and M.cdnv(st) == 0.0
    report = pnc.report_from_features([x], y, metrics=("compression", "cdnv", "nc2"))
    assert report[0]["cdnv"] == 0.0 and report[0]["note"] == ""
    y2 = np.concatenate([y, [0]])  # one class with two samples, 49 with one
    x2 = np.concatenate([x, x[:1] + 1.0])
    st2 = M.ClassStats().update(x2, y2)
    expected = np.mean([(st2.class_variances[i] + st2.class_variances[j])
                        / (2 * np.sum((st2.means[i] - st2.means[j]) ** 2))
                        for i in range(50) for j in range(50) if i != j])
    assert M.cdnv(st2) == pytest.approx(expected, rel=1e-12)


K_VOCAB = 50_000


def vocab_features(d: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """K = 50,000 classes, 1 or 2 samples each, shuffled."""
    rng = np.random.default_rng(4)
    y = np.concatenate([np.arange(K_VOCAB), rng.integers(0, K_VOCAB, size=K_VOCAB // 2)])
    y = y[rng.permutation(y.size)]
    x = rng.standard_normal((K_VOCAB, d))[y] + 0.1 * rng.standard_normal((y.size, d))
    return x.astype(np.float32), y


def test_fifty_thousand_classes_through_classstats_and_report_from_features():
    x, y = vocab_features()
    streamed = M.ClassStats(track_covariance=False)
    for start in range(0, y.size, 4_096):  # batches of a few thousand: classes arrive a few at a time
        streamed.update(x[start : start + 4_096], y[start : start + 4_096])
    assert streamed.num_classes == K_VOCAB
    np.testing.assert_array_equal(streamed.counts, np.bincount(y))
    sums = np.zeros((K_VOCAB, x.shape[1]))
    np.add.at(sums, y, x.astype(np.float64))
    np.testing.assert_allclose(streamed.means, sums / np.bincount(y)[:, None], rtol=1e-12, atol=1e-12)
    one_shot = M.ClassStats(track_covariance=False).update(x, y)
    np.testing.assert_allclose(streamed.class_sum_squares, one_shot.class_sum_squares, rtol=1e-9, atol=1e-12)
    report = pnc.report_from_features([x], y, metrics=("compression", "nc2"))
    assert report[0]["nc2_etf"] == pytest.approx(M.nc2(one_shot).etf_error, rel=1e-12)
    assert 0.0 < report[0]["compression"] < 1.0


def test_fifty_thousand_classes_through_measure_and_the_cli(tmp_path, monkeypatch):
    x, y = vocab_features()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    report = pnc.measure(model, (torch.from_numpy(x), y), metrics=("compression", "nc2"), batch_size=8_192)
    assert report.names == ["input", "0", "1", "2"]
    assert report[0]["compression"] == pytest.approx(pnc.compression(x, y), rel=1e-9)
    (tmp_path / "vocabnet.py").write_text(
        "import torch\nfrom torch import nn\n\ndef make():\n    torch.manual_seed(0)\n"
        "    return nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))\n")
    np.savez(tmp_path / "vocab.npz", x=x, y=y)
    monkeypatch.chdir(tmp_path)
    code = cli_main(["measure", "--model", "vocabnet:make", "--data", "vocab.npz", "--metrics", "compression", "nc2",
                     "--batch-size", "8192", "--tile-size", "512", "--json", "out.json"])
    assert code == 0
    rows = json.loads((tmp_path / "out.json").read_text())["rows"]
    assert [r["name"] for r in rows] == report.names
    np.testing.assert_allclose([r["compression"] for r in rows], report["compression"], rtol=1e-9)
