"""measure(): a layer table on a model pnc did not build."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from pnc import metrics as M
from pnc.report import LayerReport, measure, report_from_stats


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (120,), generator=g) * 5 + 1  # labels {1, 6, 11}
    x = torch.randn(120, 1, 8, 8, generator=g) + y.view(-1, 1, 1, 1).float() / 10
    return model, x, y


def test_measure_conv_sequential(setup):
    model, x, y = setup
    rep = measure(model, (x, y), batch_size=32, pool="flatten", metrics="all")
    assert isinstance(rep, LayerReport)
    assert len(rep) == 5
    assert rep.names == ["input", "0", "1", "2", "3"]
    np.testing.assert_array_equal(rep.column("layer"), np.arange(5))
    np.testing.assert_array_equal(rep["dim"], [64, 144, 144, 144, 3])
    # compare with metrics on explicitly computed features
    with torch.no_grad():
        feats = [x.reshape(120, -1)]
        h = x
        for m in model:
            h = m(h)
            feats.append(h.reshape(120, -1))
    for row, f in zip(rep, feats, strict=True):
        f64 = f.double().numpy()
        assert row["compression"] == pytest.approx(M.compression(f64, y), rel=1e-5)
        assert row["discrimination"] == pytest.approx(M.discrimination(f64, y), rel=1e-5)
        assert row["nc1"] == pytest.approx(M.nc1(f64, y), rel=1e-5)
        assert row["nc1_rank"] == 2
        assert row["cdnv"] == pytest.approx(M.cdnv(f64, y), rel=1e-5)
        # numerical rank from the streamed Gram equals the SVD of the stored features
        assert row["numerical_rank"] == M.numerical_rank(f64)


def test_report_api(setup):
    model, x, y = setup
    rep = measure(model, (x, y), metrics=("compression", "nc2", "effective_rank"), batch_size=50)
    assert rep.columns == ("layer", "name", "dim", "compression", "nc2_etf", "nc2_equinorm",
                           "effective_rank", "note")
    d = rep.to_dict()
    json.dumps(d)
    assert d["rows"][0]["name"] == "input"
    df = rep.to_pandas()
    assert list(df["name"]) == rep.names and df.shape == (5, 8)
    assert rep[0]["layer"] == 0
    text = repr(rep)
    assert "compression" in text and "input" in text
    assert "<table>" in rep._repr_html_()
    with pytest.raises(KeyError, match="unknown column"):
        rep.column("nope")
    with pytest.raises(ValueError, match="unknown metric"):
        measure(model, (x, y), metrics=("compresion",))


def test_degenerate_layer_becomes_nan_with_warning():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.fill_(1.0)  # constant output: all class means coincide
    x = torch.randn(40, 4)
    y = torch.arange(40) % 2
    with pytest.warns(RuntimeWarning, match="between-class scatter is zero"):
        rep = measure(model, (x, y), metrics=("compression", "discrimination"))
    assert np.isnan(rep["compression"][1]) and "coincide" in rep[1]["note"]
    assert rep["discrimination"][1] == pytest.approx(0.0)
    assert rep.to_dict()["rows"][1]["compression"] is None


def test_report_from_stats_order():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    y = np.arange(30) % 3
    stats = {"a": M.ClassStats().update(x, y), "b": M.ClassStats().update(2 * x, y)}
    rep = report_from_stats(stats, metrics=("compression",))
    assert rep.names == ["a", "b"]
    np.testing.assert_allclose(rep["compression"][0], rep["compression"][1], rtol=1e-12)
