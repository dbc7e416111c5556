"""``pnc.measure`` with default arguments on the architectures researchers bring, against features collected by hand.

Each model is measured with no options at all; the expected rows are the model's blocks in forward order, and every
row's metrics must equal those of the features computed by calling the blocks directly (mean-pooled over tokens or
positions, the documented default). Tolerances: float32 forward passes in different batch sizes differ by float32
GEMM rounding (~1e-7 relative per entry), which metrics of well-separated classes amplify little, hence rel=1e-4.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import pnc
from pnc import metrics as M

REL = 1e-4


class BasicBlock(nn.Module):
    """A residual block as in torchvision's ResNet: one ReLU module called twice, a downsample branch."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class TinyResNet(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, stride=2), BasicBlock(16, 16))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TinyTransformer(nn.Module):
    def __init__(self, vocab: int = 20, dim: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        layer = nn.TransformerEncoderLayer(dim, nhead=2, dim_feedforward=32, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=3, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(tokens)).mean(dim=1))


class TinyLSTM(nn.Module):
    def __init__(self, dim: int = 6, hidden: int = 12, classes: int = 3) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(torch.tanh(self.proj(x)))
        return self.head(out[:, -1])


def labelled_images(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = torch.randn(n, 1, 8, 8, generator=g) + y.view(-1, 1, 1, 1).float()
    return x, y


def labelled_tokens(n: int = 96, length: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    y = torch.arange(n) % 3
    tokens = torch.randint(0, 20, (n, length), generator=g)
    tokens[:, 0] = y  # the class is visible in the first token
    return tokens, y


def assert_rows_match(report: pnc.LayerReport, expected: dict[str, torch.Tensor], y: torch.Tensor) -> None:
    assert [n for n in report.names if n != "input"] == list(expected)
    for name, feats in expected.items():
        row = report.rows[report.names.index(name)]
        f64 = feats.detach().double().numpy()
        assert row["dim"] == f64.shape[1], name
        assert row["compression"] == pytest.approx(M.compression(f64, y), rel=REL), name
        assert row["discrimination"] == pytest.approx(M.discrimination(f64, y), rel=REL), name
        assert row["cdnv"] == pytest.approx(M.cdnv(f64, y), rel=REL), name
        assert row["nc2_etf"] == pytest.approx(M.nc2(f64, y).etf_error, rel=REL), name
        assert row["nc2_equinorm"] == pytest.approx(M.nc2(f64, y).equinorm, rel=REL), name
        if "nc1" in report.columns:  # the metrics that need the d×d scatter, when asked for
            assert row["nc1"] == pytest.approx(M.nc1(f64, y), rel=REL), name
            assert row["numerical_rank"] == M.numerical_rank(f64), name
        assert np.isfinite([row["compression"], row["discrimination"]]).all(), name


def test_residual_cnn_with_a_relu_called_twice_per_block() -> None:
    torch.manual_seed(0)
    model = TinyResNet()
    model.train()
    model.layer1[0].bn1.eval()  # a BatchNorm the user froze must stay frozen
    x, y = labelled_images()
    report = pnc.measure(model, (x, y), batch_size=40)
    with torch.no_grad():
        model.eval()
        h0 = model.relu(model.bn1(model.conv1(x)))
        stem_conv = model.conv1(x)
        b10 = model.layer1[0](h0)
        b11 = model.layer1[1](b10)
        b20 = model.layer2[0](b11)
        b21 = model.layer2[1](b20)
        pooled = model.avgpool(b21)
        out = model.fc(torch.flatten(pooled, 1))
    def gap(t: torch.Tensor) -> torch.Tensor:
        return t.mean(dim=(2, 3))

    expected = {"conv1": gap(stem_conv), "bn1": gap(model.bn1(stem_conv)), "relu": gap(h0),
                "layer1.0": gap(b10), "layer1.1": gap(b11), "layer2.0": gap(b20), "layer2.1": gap(b21),
                "avgpool": gap(pooled), "fc": out}
    assert_rows_match(report, expected, y)
    assert report.rows[0]["name"] == "input" and report.rows[0]["dim"] == 64
    # per-module mode restore: the model is back in train mode, except the BatchNorm frozen by the user
    model.train()
    model.layer1[0].bn1.eval()
    pnc.measure(model, (x, y), metrics=("compression",))
    assert model.training and model.layer1[0].training and not model.layer1[0].bn1.training


def test_transformer_encoder() -> None:
    torch.manual_seed(0)
    model = TinyTransformer()
    tokens, y = labelled_tokens()
    report = pnc.measure(model, (tokens, y), batch_size=32)
    assert "input: not a single floating-point tensor" in report.notes  # token ids are not features
    model.eval()
    with torch.no_grad():
        e = model.embed(tokens)
        outs = {"embed": e.mean(1)}
        h = e
        for i, layer in enumerate(model.encoder.layers):
            h = layer(h)
            outs[f"encoder.layers.{i}"] = h.mean(1)
        outs["head"] = model.head(h.mean(1))
    assert_rows_match(report, outs, y)
    first = pnc.measure(model, (tokens, y), layer_types=nn.TransformerEncoderLayer, pool="first",
                        metrics=("compression",))
    assert first.names == ["encoder.layers.0", "encoder.layers.1", "encoder.layers.2"]
    with torch.no_grad():
        direct = model.encoder.layers[0](model.embed(tokens))[:, 0]
    assert first.rows[0]["compression"] == pytest.approx(M.compression(direct.double().numpy(), y), rel=REL)


def test_variable_length_sequences_and_dict_batches() -> None:
    torch.manual_seed(0)
    model = TinyTransformer()
    batches = []
    for length in (5, 7, 9):
        tokens, y = labelled_tokens(30, length)
        batches.append({"input_ids": tokens, "label": y})
    with pytest.raises(ValueError, match="batch_fn="):
        pnc.measure(model, batches)
    report = pnc.measure(model, batches, batch_fn=lambda b: (b["input_ids"], b["label"]))
    assert len(report) == 5 and np.isfinite(report["compression"]).all()
    with pytest.raises(ValueError, match="feature dimension changed from 80 to 112.*pool='mean'"):
        pnc.measure(model, batches, batch_fn=lambda b: (b["input_ids"], b["label"]), pool="flatten",
                    layers=["embed"])


def test_lstm() -> None:
    torch.manual_seed(0)
    model = TinyLSTM()
    g = torch.Generator().manual_seed(2)
    y = torch.arange(90) % 3
    x = torch.randn(90, 5, 6, generator=g) + y.view(-1, 1, 1).float()
    report = pnc.measure(model, (x, y))
    model.eval()
    with torch.no_grad():
        p = model.proj(x)
        seq, _ = model.lstm(torch.tanh(p))
        expected = {"proj": p.mean(1), "lstm": seq.mean(1), "head": model.head(seq[:, -1])}
    assert_rows_match(report, expected, y)


def test_numpy_features_with_list_labels() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    rng = np.random.default_rng(0)
    y = [i % 3 for i in range(60)]
    x = rng.normal(size=(60, 4)).astype(np.float32) + np.array(y)[:, None]
    a = pnc.measure(model, (x, y))
    b = pnc.measure(model, (torch.from_numpy(x), torch.tensor(y)))
    np.testing.assert_allclose(a["compression"], b["compression"], rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"rank_threshold": 2}, "rank_threshold must be a share"),
        ({"device": "cuda:0" if not torch.cuda.is_available() else "mps"}, "device="),
        ({"pool": "max"}, "pool must be one of"),
        ({"layers": ["nope*"]}, "matches no module"),
        ({"layer_types": nn.LSTM}, "no module of type"),
        ({"metrics": ("nc9",)}, "unknown metric"),
    ],
)
def test_bad_arguments_name_the_option(kwargs: dict, message: str) -> None:
    model = nn.Sequential(nn.Linear(4, 3))
    x, y = torch.randn(12, 4), torch.arange(12) % 2
    with pytest.raises(ValueError, match=message):
        pnc.measure(model, (x, y), **kwargs)


def test_single_class_is_an_error() -> None:
    model = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ValueError, match="single class"):
        pnc.measure(model, (torch.randn(12, 4), torch.zeros(12, dtype=torch.long)))


def test_wide_maps_say_which_option_fixes_them() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU())
    x, y = labelled_images(24)
    with pytest.warns(RuntimeWarning, match="max_cov_dim"):
        report = pnc.measure(model, (x, y), pool="flatten", max_cov_dim=512, metrics="all")
    assert "max_cov_dim=512" in report.rows[1]["note"] and "pool='mean'" in report.rows[1]["note"]
    assert np.isfinite(pnc.measure(model, (x, y), metrics="all")["nc1"]).all()  # the default pooling keeps 16


def test_every_metric_including_the_classifier_ones() -> None:
    torch.manual_seed(0)
    model = TinyResNet()
    x, y = labelled_images()
    everything = tuple(pnc.registry.METRICS)
    report = pnc.measure(model, [(x[:50], y[:50]), (x[50:], y[50:])], metrics=everything)
    feeding = report.row("avgpool")
    model.eval()
    with torch.no_grad():
        feats = model.avgpool(model.layer2(model.layer1(model.relu(model.bn1(model.conv1(x)))))).flatten(1)
        logits = model(x)
    f64 = feats.double().numpy()
    assert feeding["nc3"] == pytest.approx(M.nc3((f64, y.numpy()), model.fc.weight.detach()), rel=REL)
    assert feeding["nc4"] == pytest.approx(M.nc4(f64, y, logits), abs=1e-12)
    assert feeding["coding_rate"] == pytest.approx(M.coding_rate(f64, eps=0.5), rel=REL)
    others = [row for row in report if row["name"] != "avgpool"]
    assert all(row["nc3"] is None and row["nc4"] is None for row in others)
    one_shot = iter([(x, y)])
    with pytest.raises(ValueError, match="one-shot iterator"):
        pnc.measure(model, one_shot, metrics=("nc4",))
    with pytest.raises(ValueError, match="no nn.Linear"):
        pnc.measure(nn.Sequential(nn.Conv2d(1, 2, 3)), (x, y), metrics=("nc3",))


def test_report_json_plot_and_layer_index(tmp_path) -> None:
    import json

    import matplotlib

    matplotlib.use("Agg")
    torch.manual_seed(0)
    model = TinyResNet()
    x, y = labelled_images()
    report = pnc.measure(model, (x, y))
    assert report["layer1.0"] == report.row("layer1.0") == report.rows[report.names.index("layer1.0")]
    with pytest.raises(KeyError, match="neither a column"):
        report["nope"]
    path = tmp_path / "report.json"
    text = report.to_json(path)
    assert json.loads(path.read_text()) == json.loads(text)
    assert json.loads(text)["rows"][1]["name"] == report.names[1]
    assert not list(tmp_path.glob(".*tmp*"))
    fig = report.plot()
    assert len(fig.axes) == 2 and fig.axes[0].get_yscale() == "log"
