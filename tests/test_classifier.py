"""pnc.classifier: the one classifier path (measure's NC3/NC4 and the book's last-layer collapse), and every path that
runs a model gives each submodule its own mode back (a BatchNorm frozen in eval mode stays frozen)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import pnc
from pnc import metrics as M
from pnc.book import experiments as E
from pnc.book.connections import last_layer_collapse, layerwise_connections
from pnc.classifier import classifier_input_row, classifier_io, find_classifier, prediction_disagreement
from pnc.features import collect_features, eval_mode, forward_features
from pnc.tracking import Tracker


class Net(nn.Module):
    """An MLP with a BatchNorm, a bias-free classifier and ``forward_features`` (for the training record)."""

    def __init__(self, d: int = 6, width: int = 8, k: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, width),
                                  nn.ReLU())
        self.classifier = nn.Linear(width, k, bias=False)
        self.tail = nn.Linear(k, k)  # a later Linear: model.classifier is still the classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x, self.body(x)]


def _data(n: int = 90, k: int = 3, d: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    return torch.randn(n, d, generator=g) + 2.0 * torch.eye(k, d)[y], y


def _frozen_net() -> Net:
    torch.manual_seed(0)
    net = Net()
    net.body[1].running_mean.fill_(0.5)  # running statistics that differ from any batch's
    net.body[1].running_var.fill_(2.0)
    net.train()
    net.body[1].eval()  # frozen by the user
    return net


def _modes(net: nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in net.named_modules()}


PATHS = {
    "measure": lambda net, x, y: pnc.measure(net, (x, y), metrics=("compression", "nc3", "nc4")),
    "collect_features": lambda net, x, y: collect_features(net, (x, y)),
    "forward_features": lambda net, x, y: list(forward_features(net, (x, y), batch_size=30)),
    "forward_features stopped early": lambda net, x, y: next(iter(forward_features(net, (x, y), batch_size=30))),
    "classifier_io": lambda net, x, y: classifier_io(net, (x, y)),
    "last_layer_collapse (book)": lambda net, x, y: last_layer_collapse(net, x, y),
    "layerwise_connections (book)": lambda net, x, y: layerwise_connections(net, x, y, layers=["body.0"]),
    "Tracker": lambda net, x, y: Tracker(net, (x, y), every=1, metrics=("compression",)).step(0),
    "training record": lambda net, x, y: pnc.train._record(net, x, y, 0, 0.0),
    "experiments' layer features (book)": lambda net, x, y: E._features(net, x, torch.device("cpu"), batch=40),
    "experiments' accuracy (book)": lambda net, x, y: E._accuracy(net, x, y, torch.device("cpu"), batch=40),
}


@pytest.mark.parametrize("path", PATHS)
def test_every_path_that_runs_a_model_keeps_a_frozen_batchnorm_frozen(path):
    net = _frozen_net()
    x, y = _data()
    before = _modes(net)
    assert before["body.1"] is False and before[""] is True and before["body.0"] is True
    PATHS[path](net, x, y)
    assert _modes(net) == before
    assert net.body[1].running_mean.eq(0.5).all()  # eval mode throughout: the running statistics are untouched


def test_eval_mode_restores_the_modes_after_an_error():
    net = _frozen_net()
    before = _modes(net)
    with pytest.raises(RuntimeError, match="inside"), eval_mode(net):
        assert not any(_modes(net).values()) and not torch.is_grad_enabled()
        raise RuntimeError("inside")
    assert _modes(net) == before


def test_classifier_io_reads_the_classifiers_inputs_and_the_logits():
    net = _frozen_net()
    x, y = _data()
    labels, inputs, logits = classifier_io(net, (x, y), batch_size=40)
    with eval_mode(net):
        expected = net.body(x).double().numpy()
    np.testing.assert_array_equal(labels, y.numpy())
    np.testing.assert_allclose(inputs, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logits, expected @ net.classifier.weight.detach().double().numpy().T, rtol=1e-5,
                               atol=1e-6)


def test_find_classifier_prefers_model_classifier_then_the_last_linear():
    net = Net()
    module, weight = find_classifier(net)
    assert module is net.classifier and weight.shape == (3, 8) and weight.dtype == np.float64
    plain = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    assert find_classifier(plain)[0] is plain[2]
    assert find_classifier(plain, np.ones((2, 5)))[0] is None
    with pytest.raises(ValueError, match="no nn.Linear; pass classifier="):
        find_classifier(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="must be a module or a K×d weight"):
        find_classifier(plain, np.ones(5))
    with pytest.raises(ValueError, match="needs the classifier module"):
        classifier_io(plain, _data(d=4, k=2), classifier=np.ones((2, 5)))


def test_measure_and_the_book_agree_at_the_classifiers_input():
    """The book's last-layer NC3/NC4 and measure's, both from the one classifier path, against the definitions."""
    net = _frozen_net()
    x, y = _data()
    report = pnc.measure(net, (x, y), layers=["body"], metrics=("nc1", "nc3", "nc4"), include_input=False)
    book = last_layer_collapse(net, x, y)
    with eval_mode(net):
        h = net.body(x).double().numpy()
        logits = net(x).double().numpy()
    w = net.classifier.weight.detach().double().numpy()
    means = np.stack([h[y.numpy() == c].mean(axis=0) for c in range(3)])
    centred = means - h.mean(axis=0)
    nc3 = np.linalg.norm(w / np.linalg.norm(w) - centred / np.linalg.norm(centred))
    nearest = np.argmin(((h[:, None, :] - means[None]) ** 2).sum(axis=2), axis=1)
    nc4 = np.mean(nearest != logits.argmax(axis=1))
    assert report[0]["nc3"] == pytest.approx(nc3, rel=1e-6) and book.nc3 == pytest.approx(nc3, rel=1e-6)
    assert report[0]["nc4"] == book.nc4 == nc4
    assert report[0]["nc1"] == pytest.approx(book.nc1, rel=1e-6)


def test_prediction_disagreement_and_the_input_row():
    net = _frozen_net()
    x, y = _data()
    stats = collect_features(net, (x, y), layers=["body", "classifier"], include_input=False)
    module, weight = find_classifier(net)
    assert classifier_input_row(stats, module, weight) == "body"
    share = prediction_disagreement(net, (x, y), stats["body"], "body", layers=["body", "classifier"],
                                    include_input=False)
    with eval_mode(net):
        h, logits = net.body(x).double().numpy(), net(x).double().numpy()
    assert share == pytest.approx(M.nc4(h, y.numpy(), logits))
    with pytest.raises(ValueError, match="one-shot iterator"):
        prediction_disagreement(net, iter([(x, y)]), stats["body"], "body")
