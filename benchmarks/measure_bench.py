"""`pnc.measure` overhead: one measuring pass (forward hooks + streaming statistics) vs a plain forward pass."""

from __future__ import annotations

import warnings

import torch

import pnc
from pnc.features import default_layers
from pnc.models import MLP

from ._util import Section, ratio_row, timeit


def run(quick: bool = False, device: str = "cpu") -> Section:
    n, d_in, width, depth, k = (4096, 784, 512, 4, 10) if quick else (10_000, 784, 1024, 4, 10)
    batch = 512
    repeat = 3 if quick else 5
    sec = Section(
        "`pnc.measure` overhead",
        f"MLP (`pnc.models.MLP`, Linear→BatchNorm→ReLU blocks), float32, input {d_in}, width {width}, depth "
        f"{depth}, K = {k}, N = {n:,} in batches of {batch} (device: {device}). Reference: the plain forward "
        "pass over the same batches in eval mode without gradients. Every measured pass hooks every block "
        "plus the input; statistics are accumulated in float64. Medians of "
        f"{repeat} runs after a warm-up.",
    )
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, d_in, generator=gen).to(device)
    y = torch.randint(0, k, (n,), generator=gen).to(device)
    model = MLP(d_in, width, k, depth=depth, init="default", seed=0).to(device)
    model.eval()

    def plain():
        with torch.no_grad():
            for i in range(0, n, batch):
                model(X[i : i + batch])

    def hooks_only():
        store = {}
        handles = [m.register_forward_hook(lambda _m, _i, o, name=name: store.__setitem__(name, o.detach()))
                   for name, m in default_layers(model)]
        try:
            with torch.no_grad():
                for i in range(0, n, batch):
                    model(X[i : i + batch])
        finally:
            for h in handles:
                h.remove()

    def measure(metrics):
        def f():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return pnc.measure(model, (X, y), metrics=metrics, batch_size=batch)

        return f

    t_plain = timeit(plain, repeat, 1, device)
    t_hooks = timeit(hooks_only, repeat, 1, device)
    t_cd = timeit(measure(("compression", "discrimination")), repeat, 1, device)
    t_all = timeit(measure(pnc.report.DEFAULT_METRICS), repeat, 1, device)
    ratio_row(sec, "forward with hooks capturing every layer (no statistics)", t_hooks, t_plain, "forward", 1.5)
    ratio_row(sec, "`pnc.measure(..., metrics=('compression', 'discrimination'))`", t_cd, t_plain, "forward", 1.5)
    ratio_row(sec, "`pnc.measure` default metrics (+ NC1, CDNV, numerical rank: d×d scatter per layer)", t_all,
              t_plain, "forward", None)
    sec.notes.append(
        "NC1 and the numerical rank need each layer's d×d scatter, one extra float64 GEMM per layer and batch "
        "(about the cost of that layer's forward GEMM in float64), so the default-metrics pass is reported "
        "without a goal; the trace metrics C and D need only per-class sums."
    )
    return sec
