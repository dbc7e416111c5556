"""Tracker: measurements every k steps of a user's training loop, collected in one table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import pnc
from pnc.tracking import Tracker


def test_tracker_measures_every_k_steps_without_disturbing_training() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    g = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 3
    x = torch.randn(120, 5, generator=g) + 2 * nn.functional.one_hot(y, 5).float()
    tracker = Tracker(model, (x, y), every=5, metrics=("compression", "discrimination"))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    measured = []
    for step in range(21):
        running = model[1].running_mean.clone()
        if tracker.step(step) is not None:
            measured.append(step)
            assert model.training and torch.equal(model[1].running_mean, running)
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    assert measured == [0, 5, 10, 15, 20]
    table = tracker.report
    assert table.columns[0] == "step" and len(table) == 5 * 5  # 5 measurements x (input + 4 layers)
    steps, values = tracker.series("compression", "2")
    np.testing.assert_array_equal(steps, measured)
    assert values[-1] < values[0]  # training compresses the features of the hidden layer
    last = tracker.measure(21).row("2")["compression"]
    assert last == pytest.approx(pnc.measure(model, (x, y)).row("2")["compression"], rel=1e-12)


def test_tracker_rejects_bad_steps() -> None:
    model = nn.Sequential(nn.Linear(2, 2))
    x, y = torch.randn(10, 2), torch.arange(10) % 2
    with pytest.raises(ValueError, match="every must be >= 1"):
        Tracker(model, (x, y), every=0)
    tracker = Tracker(model, (x, y), every=1)
    with pytest.raises(ValueError, match="nothing measured"):
        _ = tracker.report
    tracker.step(3)
    with pytest.raises(ValueError, match="not after"):
        tracker.measure(3)
