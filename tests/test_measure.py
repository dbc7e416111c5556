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


def test_report_from_features_is_the_table_measure_gives(setup):
    """One table type: features already in memory give measure's rows (same columns, same numbers)."""
    from pnc.report import report_from_features

    model, x, y = setup
    metrics = ("compression", "discrimination", "nc1", "rank")
    rep = measure(model, (x, y), batch_size=40, pool="flatten", metrics=metrics)
    with torch.no_grad():
        feats, h = {"input": x.reshape(120, -1).double()}, x.double()
        for name, m in zip(["0", "1", "2", "3"], model.double(), strict=True):
            h = m(h)
            feats[name] = h.reshape(120, -1)
    model.float()
    by_hand = report_from_features({k: v.numpy() for k, v in feats.items()}, y.numpy(), metrics)
    assert by_hand.columns == rep.columns and by_hand.names == rep.names
    for col in ("compression", "discrimination", "nc1"):
        np.testing.assert_allclose(by_hand[col], rep[col], rtol=1e-5)  # float32 forward vs float64 forward
    np.testing.assert_array_equal(by_hand["numerical_rank"], rep["numerical_rank"])
    listed = report_from_features([f.numpy() for f in feats.values()], y.numpy(), metrics)
    assert listed.names == ["z0", "z1", "z2", "z3", "z4"]
    with pytest.raises(ValueError, match="classifier"):
        report_from_features(list(feats.values()), y.numpy(), ("nc3",))
    everything = report_from_features([f.numpy() for f in feats.values()], y.numpy(), "all")
    assert "coding_rate" in everything.columns and "nc3" not in everything.columns
    with pytest.raises(ValueError, match="single class"):
        report_from_features([feats["input"].numpy()], np.zeros(120, dtype=int))
    with pytest.raises(ValueError, match="at least one"):
        report_from_features([], y.numpy())


def test_layer_report_round_trips_through_its_dict_and_takes_columns(setup):
    model, x, y = setup
    rep = measure(model, (x, y), batch_size=64, pool="flatten")
    back = LayerReport.from_dict(json.loads(json.dumps(rep.to_dict())))
    assert back.columns == rep.columns and back.names == rep.names
    np.testing.assert_array_equal(back["compression"], rep["compression"])
    assert LayerReport.from_dict(rep) is rep
    rows_only = LayerReport.from_dict(rep.to_dict()["rows"])
    assert rows_only.columns == rep.columns
    wider = rep.with_columns(kind=["input"] + ["hidden"] * 4, probe=np.linspace(0.5, 1, 5))
    assert wider.columns[-1] == "note" and wider.columns[-3:-1] == ("kind", "probe")
    assert wider["input"]["kind"] == "input" and isinstance(wider[4]["probe"], float)
    with pytest.raises(ValueError, match="3 values for 5 layers"):
        rep.with_columns(kind=["a", "b", "c"])
    with pytest.raises(ValueError, match="rows"):
        LayerReport.from_dict({"columns": ["layer"]})
    with pytest.raises(ValueError, match="list of dicts"):
        LayerReport.from_dict([1, 2])
