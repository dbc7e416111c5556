"""The metric registry: a new metric is one entry, and every table (measure, report_from_features, the CLI and its
JSON) and the docs read the same table."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import pnc
from pnc.cli import main as core_main
from pnc.registry import DEFAULT_METRICS, METRICS, STATISTICS, Metric, resolve_metrics

ROOT = Path(__file__).resolve().parents[1]


def _trace_ratio(stats: pnc.ClassStats, inputs) -> tuple[float, int]:
    """A toy metric from its definition: Tr Σ_W / Tr Σ_B with Σ_B centred on the mean of the class means."""
    means = stats.means
    centred = means - means.mean(axis=0)
    tr_b = float(np.sum(centred**2) / means.shape[0])
    if tr_b == 0.0:
        raise ValueError("toy: class means coincide")
    return stats.class_sum_squares.sum() / stats.n_samples / tr_b, stats.num_classes


TOY = Metric(_trace_ratio, ("toy_ratio", "toy_classes"), ("counts", "means", "class_sum_squares"), "a toy metric")


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(METRICS, "toy", TOY)  # the one entry; removed again after the test
    yield "toy"


def _data(seed: int = 0, n: int = 90, k: int = 3, d: int = 6):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    x = torch.randn(n, d, generator=g) + 3.0 * torch.eye(k, d)[y]
    return x, y


def _model(d: int = 6, k: int = 3) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(d, 8), nn.ReLU(), nn.Linear(8, k))


def _expected(features: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    classes = np.unique(labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in classes])
    within = sum(((features[labels == c] - means[i]) ** 2).sum() for i, c in enumerate(classes)) / len(labels)
    between = ((means - means.mean(axis=0)) ** 2).sum() / len(classes)
    return within / between, len(classes)


def test_a_registered_metric_appears_in_measure_and_report_from_features(toy):
    x, y = _data()
    model = _model()
    report = pnc.measure(model, (x, y), metrics=("compression", toy), include_input=True)
    assert report.columns == ("layer", "name", "dim", "compression", "toy_ratio", "toy_classes", "note")
    ratio, k = _expected(x.numpy().astype(np.float64), y.numpy())
    assert report[0]["toy_ratio"] == pytest.approx(ratio, rel=1e-10) and report[0]["toy_classes"] == k
    assert "toy_ratio" in pnc.measure(model, (x, y), metrics="all").columns
    features = {"a": x.numpy(), "b": 2.0 * x.numpy() + 1.0}
    table = pnc.report_from_features(features, y, metrics="all")
    assert np.allclose(table["toy_ratio"], [ratio, ratio], rtol=1e-10)  # scale and shift free


def test_a_registered_metric_appears_in_the_cli_and_its_json(toy, tmp_path, monkeypatch, capsys):
    x, y = _data()
    (tmp_path / "toy_models.py").write_text(
        "import torch\nfrom torch import nn\n\n\ndef make():\n    torch.manual_seed(1)\n"
        "    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))\n"
    )
    np.savez(tmp_path / "data.npz", x=x.numpy(), y=y.numpy())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert core_main(["measure", "--help"]) == 0
    assert "toy" in capsys.readouterr().out  # the help lists the registry
    out = tmp_path / "table.json"
    assert core_main(["measure", "--model", "toy_models:make", "--data", str(tmp_path / "data.npz"),
                      "--metrics", "toy", "nc2", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["columns"] == ["layer", "name", "dim", "toy_ratio", "toy_classes", "nc2_etf", "nc2_equinorm", "note"]
    ratio, _ = _expected(x.numpy().astype(np.float64), y.numpy())
    assert doc["rows"][0]["toy_ratio"] == pytest.approx(ratio, rel=1e-6)
    assert "toy_ratio" in capsys.readouterr().out


def test_the_toy_entry_is_gone_after_the_test():
    assert "toy" not in METRICS
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['toy'\]"):
        pnc.measure(_model(), _data(), metrics=("toy",))


def test_a_metric_undefined_at_a_layer_is_nan_with_a_note(toy):
    x, y = _data()
    zero = torch.zeros_like(x)  # every class mean coincides: the toy metric raises
    with pytest.warns(RuntimeWarning, match="toy undefined: toy: class means coincide"):
        table = pnc.report_from_features([zero, x], y, metrics=(toy,))
    assert np.isnan(table["toy_ratio"][0]) and np.isfinite(table["toy_ratio"][1])
    assert "toy: toy: class means coincide" in table[0]["note"]


def test_scatter_is_kept_exactly_when_a_registered_metric_needs_it(monkeypatch):
    x, y = _data()
    seen = []
    needs = Metric(lambda st, o: (seen.append(st.track_covariance) or 0.0,), ("probe",), ("scatter",))
    monkeypatch.setitem(METRICS, "probe", needs)
    pnc.report_from_features([x], y, metrics=("probe",))
    monkeypatch.setitem(METRICS, "probe", Metric(needs.compute, ("probe",), ("counts",)))
    pnc.report_from_features([x], y, metrics=("probe",))
    assert seen == [True, False]


def test_an_entry_that_returns_the_wrong_number_of_values_is_named(monkeypatch):
    monkeypatch.setitem(METRICS, "short", Metric(lambda st, o: (1.0,), ("a", "b"), ("counts",)))
    with pytest.raises(ValueError, match=r"metric 'short' returned 1 values for its 2 columns \('a', 'b'\)"):
        pnc.report_from_features([_data()[0]], _data()[1], metrics=("short",))


def test_metric_entries_are_checked():
    with pytest.raises(ValueError, match="unknown statistics \\['gradients'\\]"):
        Metric(lambda st, o: (0.0,), ("x",), ("gradients",))
    with pytest.raises(ValueError, match="at least one column name"):
        Metric(lambda st, o: (0.0,), (), ("counts",))
    with pytest.raises(ValueError, match="available \\(metrics=\\)"):
        resolve_metrics(("compresion",))


def test_the_classifier_metrics_follow_their_statistics():
    on_classifier = {name for name, m in METRICS.items() if m.needs_classifier}
    assert on_classifier == {"nc3", "nc4"}
    assert set(resolve_metrics("all")) - set(resolve_metrics("all", classifier=False)) == on_classifier
    assert not any(METRICS[m].needs_scatter for m in DEFAULT_METRICS)
    assert {name for name, m in METRICS.items() if m.needs_scatter} == {"nc1", "rank", "effective_rank",
                                                                        "coding_rate"}
    assert set(STATISTICS) >= {s for m in METRICS.values() for s in m.statistics}


def test_the_readme_lists_every_registered_metric_and_its_columns():
    text = (ROOT / "README.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\s*\| `(\w+)` \| ([^|]+) \|", text, re.M)}
    for name, metric in METRICS.items():
        assert name in rows, f"README's metric table misses {name!r}"
        assert re.findall(r"`(\w+)`", rows[name]) == list(metric.columns), name
