"""collect_features: layer selection, data forms, hooks and mode restoration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pnc import metrics as M
from pnc.features import collect_features, default_layers, resolve_layers


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def data(n: int = 90):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 5, generator=g)
    y = torch.tensor([2, 7, 11])[torch.randint(0, 3, (n,), generator=g)]
    return x, y


def manual_features(model: nn.Sequential, x: torch.Tensor) -> list[np.ndarray]:
    feats = [x.double().numpy()]
    h = x
    with torch.no_grad():
        for m in model:
            h = m(h)
            feats.append(h.double().numpy())
    return feats


def test_sequential_matches_manual_forward():
    model = mlp()
    x, y = data()
    res = collect_features(model, (x, y), batch_size=16)
    assert res.names == ["input", "0", "1", "2"]
    for (name, st), f in zip(res.items(), manual_features(model, x), strict=True):
        ref = M.ClassStats().update(f, y)
        np.testing.assert_array_equal(st.classes, [2, 7, 11])
        np.testing.assert_allclose(st.means, ref.means, rtol=1e-6, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(st.sigma_w(), ref.sigma_w(), rtol=1e-5, atol=1e-7, err_msg=name)


def test_data_forms_agree():
    model = mlp()
    x, y = data()
    forms = [
        (x, y),
        (x.numpy(), y.numpy()),
        DataLoader(TensorDataset(x, y), batch_size=7),
        TensorDataset(x, y),
        [(x[i : i + 10], y[i : i + 10]) for i in range(0, len(y), 10)],
    ]
    results = [collect_features(model, f, batch_size=32) for f in forms]
    for r in results[1:]:
        for name in results[0]:
            np.testing.assert_allclose(r[name].sigma_w(), results[0][name].sigma_w(), rtol=1e-5, atol=1e-7)
            np.testing.assert_array_equal(r[name].counts, results[0][name].counts)


def test_layer_selection_by_name_and_module():
    model = mlp()
    x, y = data()
    res = collect_features(model, (x, y), layers=["1"], include_input=False)
    assert res.names == ["1"]
    res = collect_features(model, (x, y), layers=[model[2]])
    assert res.names == ["input", "2"] and res["2"].dim == 3
    assert resolve_layers(model, "0")[0][1] is model[0]


def test_unknown_layer_name():
    with pytest.raises(ValueError, match=r"unknown layer name 'fc9'; available: '0', '1', '2'"):
        collect_features(mlp(), data(), layers=["fc9"])
    with pytest.raises(ValueError, match="not part of the model"):
        resolve_layers(mlp(), [nn.Linear(2, 2)])


class WithFeatureLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 6))
        self.classifier = nn.Linear(6, 3, bias=False)

    def feature_layers(self):
        return [("hidden1", self.body[1]), ("hidden2", self.body[2])]

    def forward(self, x):
        return self.classifier(self.body(x))


class Custom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 4)
        self.act = nn.GELU()
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        return self.out(self.drop(self.act(self.fc(x))))


def test_default_layers():
    assert [n for n, _ in default_layers(WithFeatureLayers())] == ["hidden1", "hidden2"]
    assert [n for n, _ in default_layers(Custom())] == ["fc", "act", "drop", "out"]
    res = collect_features(WithFeatureLayers(), data())
    assert res.names == ["input", "hidden1", "hidden2"]


def test_conv_outputs_are_pooled_or_flattened():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    x = torch.randn(30, 1, 6, 6)
    y = torch.arange(30) % 3
    pooled = collect_features(model, (x, y), keep=True)
    assert [pooled[n].dim for n in pooled] == [36, 2, 2, 32, 3]  # input flattened, maps averaged over positions
    with torch.no_grad():
        np.testing.assert_allclose(pooled.features["0"], model[0](x).mean(dim=(2, 3)).numpy(), rtol=1e-6)
    res = collect_features(model, (x, y), keep=True, pool="flatten")
    assert [res[n].dim for n in res] == [36, 32, 32, 32, 3]
    assert res.features["0"].shape == (30, 32)
    assert res.outputs.shape == (30, 3)
    np.testing.assert_array_equal(res.labels, y.numpy())
    with torch.no_grad():
        direct = model[0](x).reshape(30, -1).double().numpy()
    np.testing.assert_allclose(res["0"].means, M.ClassStats().update(direct, y).means, rtol=1e-6, atol=1e-7)


def test_eval_mode_used_and_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Dropout(0.9), nn.Linear(4, 3))
    model.train()
    before = model[1].running_mean.clone()
    x, y = data()
    a = collect_features(model, (x, y))
    b = collect_features(model, (x, y))
    assert model.training and all(m.training for m in model)
    assert torch.equal(model[1].running_mean, before)  # BN statistics untouched: eval mode was used
    np.testing.assert_array_equal(a["2"].means, b["2"].means)  # dropout off: deterministic
    model.eval()
    collect_features(model, (x, y))
    assert not model.training


def test_hooks_removed_even_on_error():
    model = mlp()
    x, y = data()
    bad = [(x[:10], y[:10]), (x[10:20], y[10:19])]
    with pytest.raises(ValueError, match="length mismatch"):
        collect_features(model, bad)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    collect_features(model, (x, y))
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


class Twice(nn.Module):
    """A module reused in one forward pass (like ResNet's ``relu``), next to one called once."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(5, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        return self.head(self.fc(self.fc(x)))


def test_reused_module_each_call_skip_or_error():
    model = Twice()
    x, y = data()
    each = collect_features(model, (x, y), keep=True)
    assert each.names == ["input", "fc", "fc#2", "head"]
    with torch.no_grad():
        first = model.fc(x)
        second = model.fc(first)
    np.testing.assert_allclose(each.features["fc"], first.numpy(), rtol=1e-6)
    np.testing.assert_allclose(each.features["fc#2"], second.numpy(), rtol=1e-6)
    skipped = collect_features(model, (x, y), reused="skip")
    assert skipped.names == ["input", "head"] and "fc: called 2 times" in skipped.notes["skipped"]
    with pytest.raises(ValueError, match="called 2 times.*reused='each'"):
        collect_features(model, (x, y), reused="error")
    with pytest.raises(ValueError, match="reused must be one of"):
        collect_features(model, (x, y), reused="twice")


def test_wide_layer_skips_covariance():
    model = mlp()
    res = collect_features(model, data(), max_cov_dim=6)
    assert res["input"].track_covariance and not res["0"].track_covariance
    assert M.compression(res["0"]) > 0


def test_one_options_object_names_every_forward_pass_option():
    """ForwardOptions holds exactly the options that forward_features, collect_features and measure share, with the
    same defaults, and its kwargs() keep the values themselves (a module stays the same module)."""
    import inspect

    from pnc.features import ForwardOptions, collect_features, forward_features
    from pnc.report import measure

    fields = ForwardOptions().kwargs()
    for fn in (forward_features, collect_features, measure):
        params = inspect.signature(fn).parameters
        assert set(fields) <= set(params), fn.__name__
        assert {name: params[name].default for name in fields} == fields, fn.__name__
    layer = torch.nn.Linear(2, 2)
    assert ForwardOptions(layers=[layer]).kwargs()["layers"][0] is layer
    with pytest.raises(ValueError, match="reused must be one of"):
        next(iter(forward_features(torch.nn.Sequential(layer), (torch.ones(4, 2), torch.arange(4) % 2),
                                   reused="twice")))
