"""`pnc.measure` overhead: one measuring pass (forward hooks + streaming statistics) vs a plain forward pass."""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable
from typing import Any

import torch

import pnc
from pnc.features import default_layers
from pnc.models import MLP

from ._util import Section, fmt_time, ratio_row, timeit


def floor_forward_plus_syrk(model: torch.nn.Module, X: torch.Tensor, batch: int) -> Callable[[], None]:
    """The arithmetic floor of a pass that keeps every measured layer's d×d scatter exactly: the forward pass plus
    one float64 syrk of each measured layer's features per batch (nothing else)."""
    names = [name for name, _ in default_layers(model)]
    modules = dict(model.named_modules())

    def run() -> None:
        store: dict[str, torch.Tensor] = {}
        handles = [modules[n].register_forward_hook(lambda _m, _i, o, n=n: store.__setitem__(n, o)) for n in names]
        try:
            with torch.no_grad():
                for i in range(0, len(X), batch):
                    xb = X[i : i + batch]
                    model(xb)
                    for f in [xb, *store.values()]:
                        c = f.reshape(len(f), -1).double().numpy()
                        c.T @ c
        finally:
            for h in handles:
                h.remove()

    return run


def run(quick: bool = False, device: str = "cpu") -> Section:
    n, d_in, width, depth, k = (4096, 784, 512, 4, 10) if quick else (20_000, 784, 512, 4, 10)
    batch = 512
    repeat = 3 if quick else 7
    sec = Section(
        "`pnc.measure` overhead",
        f"MLP (`pnc.models.MLP`, Linear→BatchNorm→ReLU blocks), float32, {d_in}→{width}×{depth - 1}→{k}, "
        f"N = {n:,} in batches of {batch} (device: {device}). Reference: the plain forward pass over the same "
        "batches in eval mode without gradients. `measure` hooks every block plus the input. The timed calls are "
        f"interleaved (plain, hooks, C/D, default, all) and each ratio is the median over {repeat} rounds of the "
        "ratio within a round, so load on a shared machine cancels.",
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

    scatter = ("compression", "discrimination", "cdnv", "nc2", "nc1", "rank")
    timed = {"plain": plain, "hooks": hooks_only, "cd": measure(("compression", "discrimination")),
             "default": measure(pnc.report.DEFAULT_METRICS), "scatter": measure(scatter)}
    if device == "cpu":
        timed["floor"] = floor_forward_plus_syrk(model, X, batch)
    ratios = interleaved_ratios(timed, "plain", repeat, device)
    t_plain = ratios.pop("_reference_time")
    times = ratios.pop("_times")
    ratio_row(sec, "forward with hooks capturing every layer (no statistics)", times["hooks"], t_plain, "forward",
              1.5, ratio=ratios["hooks"])
    ratio_row(sec, "`pnc.measure(..., metrics=('compression', 'discrimination'))`", times["cd"], t_plain,
              "forward", 1.3, ratio=ratios["cd"])
    ratio_row(sec, f"`pnc.measure` default metrics {pnc.report.DEFAULT_METRICS}", times["default"], t_plain,
              "forward", 2.0, ratio=ratios["default"])
    ratio_row(sec, "`pnc.measure` with NC1 and the numerical rank as well (d×d scatter per layer)",
              times["scatter"], t_plain, "forward", None, ratio=ratios["scatter"])
    if "floor" in times:
        sec.add("the floor of any exact scatter pass: forward + one float64 syrk per layer and batch",
                fmt_time(times["floor"]), f"{fmt_time(t_plain)} (forward)", f"{ratios['floor']:.2f}×")
        ratio_row(sec, "`pnc.measure` with NC1 and rank, against that floor", times["scatter"], times["floor"],
                  "floor", 1.3, ratio=ratios["scatter"] / ratios["floor"])
    sec.notes.append(
        "C, D, CDNV and NC2 need per-class sums and squared norms only: shifted float64 sums on the features' device; "
        "on the CPU each layer's batch passes block by block through one cache-sized scratch shared by all layers "
        "(convert to float64, subtract the class shift, row norms, `index_add_`: five memory-bound passes per "
        "block, no GEMM). NC1 and the ranks need each "
        "layer's d×d scatter, one float64 syrk per layer and batch; on this model that alone costs more than the "
        "forward pass (the floor row), so they are not in the default set and no ≤ 2× goal can hold for them."
    )
    many_classes(sec, device)
    return sec


def interleaved_ratios(timed: dict[str, Callable[[], Any]], reference: str, repeat: int, device: str
                       ) -> dict[str, Any]:
    """Run every callable once per round (after a warm-up round); per name the median over rounds of its time over
    the reference's time in the same round, plus ``_times`` (medians) and ``_reference_time``."""
    for fn in timed.values():
        fn()
    rounds: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(repeat):
        for name, fn in timed.items():
            rounds[name].append(timeit(fn, 1, 0, device))
    ref = rounds[reference]
    out: dict[str, Any] = {name: statistics.median(t / r for t, r in zip(ts, ref, strict=True))
                           for name, ts in rounds.items()}
    out["_times"] = {name: statistics.median(ts) for name, ts in rounds.items()}
    out["_reference_time"] = statistics.median(ref)
    return out


def many_classes(sec: Section, device: str) -> None:
    """K = 1,000 classes, N = 2,000: every metric of `measure` (the K×K and d×d work after the pass dominates)."""
    n, k = 2_000, 1_000
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(n, 784, generator=gen).to(device)
    y = (torch.arange(n) % k).to(device)
    model = MLP(784, 512, k, depth=4, init="default", seed=0).to(device).eval()

    def every():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return pnc.measure(model, (X, y), metrics="all")

    t = timeit(every, 3, 1, device)
    sec.add(f"`pnc.measure(..., metrics='all')`, K = {k:,} classes, N = {n:,} (same MLP, 1,000 outputs)",
            fmt_time(t), "", "", "< 1 s", t < 1.0)
