"""Training: DLN full-batch step time vs the matmuls of its forward+backward; steps/s of the theory recipe."""

from __future__ import annotations

import torch

from pnc.data import orthogonal_dataset
from pnc.models import DeepLinearNetwork
from pnc.train import TrainConfig, train

from ._util import Section, fmt_time, ratio_row, timeit


def matmul_reference(model: DeepLinearNetwork, n: int, device: str):
    """A function doing exactly the GEMMs of one forward+backward pass of ``model`` on ``n`` samples.

    Forward ``H_l = H_{l-1} W_lᵀ``; backward ``∂W_l = G_lᵀ H_{l-1}`` for every layer and ``∂H_{l-1} = G_l W_l``
    for every layer but the first. Operands are random tensors of the same shapes, dtype and device.
    """
    ws = [w.detach() for w in model.weights()]
    dt = ws[0].dtype
    gen = torch.Generator(device="cpu").manual_seed(0)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen, dtype=dt).to(device)

    hs = [rnd(n, w.shape[1]) for w in ws]  # layer inputs
    gs = [rnd(n, w.shape[0]) for w in ws]  # gradients at layer outputs

    def run():
        for w, h in zip(ws, hs, strict=True):
            torch.mm(h, w.t())
        for i, (w, h, g) in enumerate(zip(ws, hs, gs, strict=True)):
            torch.mm(g.t(), h)
            if i > 0:
                torch.mm(g, w)

    return run


def step_time(make_model, X, y, config: TrainConfig, repeat: int) -> float:
    """Median seconds per epoch of :func:`pnc.train` (fresh model each run; one warm-up run)."""

    def once() -> float:
        model = make_model()
        res = train(model, X, y, config)
        return res.wall_time / res.epochs_run

    once()
    return sorted(once() for _ in range(repeat))[repeat // 2]


def run(quick: bool = False, device: str = "cpu") -> Section:
    n, d, k, depth = (1024, 128, 10, 6) if quick else (2048, 256, 10, 6)
    epochs = 5 if quick else 10
    repeat = 3
    sec = Section(
        "Training",
        f"Deep linear network, float64 (the theory's dtype), N = {n:,}, input dim = width = {d}, K = {k}, "
        f"L = {depth}, MSE, full-batch GD via `pnc.train` ({epochs} epochs per run, median of {repeat} runs "
        "after a warm-up; the time per epoch includes the loss, backward, the optimizer step and the schedule). "
        "Reference: the same GEMMs as one forward+backward pass (`matmul_reference`), timed alone. "
        f"Device: {device}.",
    )
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=gen, dtype=torch.float64).to(device)
    y = torch.randint(0, k, (n,), generator=gen).to(device)

    def make():
        return DeepLinearNetwork(d, d, k, depth=depth, init="orthogonal", xi=1.0, seed=0).to(device)

    gd = TrainConfig(optimizer="gd", lr=1e-3, epochs=epochs, alpha=1.0)
    t_step = step_time(make, X, y, gd, repeat)
    t_mm = timeit(matmul_reference(make(), n, device), repeat=repeat * 3, warmup=2, device=device)
    ratio_row(sec, "GD step (full batch)", t_step, t_mm, "fwd+bwd GEMMs", 2.0)

    bs = 128
    sgd = TrainConfig(optimizer="sgd", lr=1e-3, epochs=max(2, epochs // 5), batch_size=bs, alpha=1.0, seed=0)
    t_epoch = step_time(make, X, y, sgd, repeat)
    t_mm_b = timeit(matmul_reference(make(), bs, device), repeat=repeat * 3, warmup=2, device=device)
    steps = -(-n // bs)
    ratio_row(sec, f"SGD step (batch {bs})", t_epoch / steps, t_mm_b, "fwd+bwd GEMMs", None)

    # the authors' theory recipe (tests/test_train.py): N=30, d=50, K=3, width 50, L=6
    Xr, yr = orthogonal_dataset(10, 3, 50, seed=0)
    Xr, yr = Xr.to(device), yr.to(device)

    def make_r():
        return DeepLinearNetwork(50, 50, 3, depth=6, init="orthogonal", xi=0.3, seed=0).to(device)

    fixed = TrainConfig(optimizer="gd", lr=0.1, epochs=300 if quick else 1000, alpha=100.0, schedule="cosine",
                        final_lr_factor=0.01)
    t_r = step_time(make_r, Xr, yr, fixed, 3)
    t_mm_r = timeit(matmul_reference(make_r(), 30, device), repeat=50, warmup=5, device=device)
    sec.add("theory recipe (N=30, d=50, K=3, width 50, L=6): GD steps per second", f"{1 / t_r:,.0f} steps/s",
            f"{fmt_time(t_r)} per step; GEMMs alone {fmt_time(t_mm_r)}", f"{t_r / t_mm_r:.1f}×",
            "informational (overhead-bound at this size)")
    recipe = fixed.replace(epochs=5000, loss_tol=1e-11, check_every=10)
    res = train(make_r(), Xr, yr, recipe)
    sec.add("theory recipe to loss < 1e-11", fmt_time(res.wall_time), f"{res.epochs_run} epochs",
            "", f"converged: {res.converged}")
    sec.notes.append(
        "At the theory recipe's size every GEMM is tiny, so a step costs mostly Python/autograd/optimizer "
        "overhead; the ratio to the GEMMs there is informative only. The goal applies to the larger network."
    )
    return sec
