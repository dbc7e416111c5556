"""Layerwise metrics at CIFAR scale: ClassStats, C, D and NC1 against a GEMM and against research-style code."""

from __future__ import annotations

import time

import numpy as np
import torch

from pnc import metrics as M
from pnc import stats

from ._util import Section, fmt_bytes, fmt_time, ratio_row, sync, timeit


def make_batches(n: int, d: int, k: int, batch: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic float32 'penultimate-layer features': class centres plus isotropic noise, in batches."""
    return list(iter_batches(n, d, k, batch, seed))


def iter_batches(n: int, d: int, k: int, batch: int, seed: int = 0):
    """Generate the batches one at a time (so the full N×d matrix never exists)."""
    centres = np.random.default_rng(seed).normal(size=(k, d)).astype(np.float32)
    for i, start in enumerate(range(0, n, batch)):
        rng = np.random.default_rng([seed, i])
        m = min(batch, n - start)
        y = rng.integers(0, k, size=m)
        x = centres[y] + rng.standard_normal((m, d), dtype=np.float32)
        yield x, y


def stream(batches, track: bool, device: str) -> M.ClassStats:
    st = M.ClassStats(track_covariance=track)
    for x, y in batches:
        st.update(x, y)
    return st


def research_style_nc1(batches, k: int, d: int, device: str) -> tuple[float, dict[str, float]]:
    """NC1 as public research code typically computes it: class means in one pass, then Σ_W by summing one
    d×d outer product per sample in a Python loop, then Tr(Σ_W Σ_B⁺)/K with a d×d pseudo-inverse.

    Written here only as the baseline. Accumulates in float64 (the same precision as pnc). Returns NC1 and the
    time of each phase.
    """
    dt = torch.float64
    t0 = time.perf_counter()
    mean = torch.zeros(k, d, dtype=dt, device=device)
    cnt = torch.zeros(k, dtype=dt, device=device)
    tb = [(torch.as_tensor(x, device=device).to(dt), torch.as_tensor(y, device=device)) for x, y in batches]
    for x, y in tb:
        for c in range(k):
            mean[c] += x[y == c].sum(0)
            cnt[c] += (y == c).sum()
    mean /= cnt[:, None]
    sync(device)
    t1 = time.perf_counter()
    sw = torch.zeros(d, d, dtype=dt, device=device)
    n = 0
    for x, y in tb:
        for i in range(x.shape[0]):  # the per-sample loop
            z = x[i] - mean[y[i]]
            sw += torch.outer(z, z)
            n += 1
    sw /= n
    sync(device)
    t2 = time.perf_counter()
    mc = mean - mean.mean(0)
    sb = mc.T @ mc / k
    value = float(torch.trace(sw @ torch.linalg.pinv(sb, rtol=1e-10)) / k)
    sync(device)
    t3 = time.perf_counter()
    return value, {"means": t1 - t0, "loop": t2 - t1, "pinv": t3 - t2, "n": n}


_PEAK_SCRIPT = """
import os, sys, threading, time
import numpy as np, torch
sys.path.insert(0, {root!r})
from benchmarks.metrics_bench import iter_batches, stream
from pnc import metrics as M
from pnc import stats
n, d, k, batch, two_pass = {args!r}
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
M.nc1(stream(iter_batches(4 * batch, 8, k, batch, seed=2), True, "cpu"))  # warm-up: libraries, thread pools
peak, done = [0], threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)
base = rss()
sampler = threading.Thread(target=sample)
sampler.start()
if two_pass:
    M.nc1_two_pass(lambda: iter_batches(n, d, k, batch, seed=1))
else:
    st = stream(iter_batches(n, d, k, batch, seed=1), True, "cpu")
    M.nc1(st)
    M.compression(st)
done.set()
sampler.join()
print(max(peak[0], rss()) - base)
"""


def peak_stream_memory(n: int, d: int, k: int, batch: int, two_pass: bool = False) -> int:
    """Peak growth of the resident memory (bytes) of a fresh process while it streams N generated samples: one
    stream with the d×d scatter (NC1 and C), or ``two_pass``: `nc1_two_pass` over a batch generator function.
    Read from the operating system (``/proc/self/statm``, sampled every 2 ms), so torch's allocations count as well
    as numpy's."""
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    code = _PEAK_SCRIPT.format(root=root, args=(n, d, k, batch, two_pass))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def stability(device: str) -> tuple[dict[str, float], dict[str, float]]:
    """Relative errors of Tr Σ_W, C and NC1 with a common offset 1e6, pnc vs the textbook E[xxᵀ] − μμᵀ."""
    rng = np.random.default_rng(7)
    n, d, k = 20000, 64, 10
    y = rng.integers(0, k, size=n)
    z = rng.normal(size=(k, d))[y] + rng.normal(size=(n, d))
    x = z + 1e6
    z = x - 1e6  # exact (Sterbenz): the same point cloud as x, without the offset

    def reference(z):  # float64 two-pass on the offset-free cloud
        means = np.stack([z[y == c].mean(0) for c in range(k)])
        cz = z - means[y]
        sw = cz.T @ cz / n
        mc = means - z.mean(0)  # Σ_B centred on the sample mean, pnc's default (between_centre="sample_mean")
        sb = mc.T @ mc / k
        return np.trace(sw), np.trace(sw) / np.trace(sb), np.trace(sw @ np.linalg.pinv(sb, rcond=1e-10)) / k

    def naive(x):  # one pass: Σ_W from E[xxᵀ] − μμᵀ per class
        sw = np.zeros((d, d))
        means = np.zeros((k, d))
        for c in range(k):
            xc = x[y == c]
            means[c] = xc.mean(0)
            sw += (xc.T @ xc / len(xc) - np.outer(means[c], means[c])) * len(xc)
        sw /= n
        mc = means - x.mean(0)
        sb = mc.T @ mc / k
        return np.trace(sw), np.trace(sw) / np.trace(sb), np.trace(sw @ np.linalg.pinv(sb, rcond=1e-10)) / k

    ref = np.array(reference(z))
    st = M.ClassStats()
    for xb, yb in zip(np.array_split(x, 8), np.array_split(y, 8), strict=True):
        st.update(torch.as_tensor(xb, device=device) if device == "cuda" else xb, yb)
    two = M.nc1_two_pass(list(zip(np.array_split(x, 8), np.array_split(y, 8), strict=True)))
    ours = np.array([st.trace_sigma_w(), M.compression(st), M.nc1(st), two])
    nv = np.array(naive(x))
    nv = np.append(nv, nv[-1])
    ref = np.append(ref, ref[-1])
    names = ["Tr Σ_W", "C", "NC1 (one stream)", "NC1 (two passes)"]
    return (
        {nm: float(abs(a - b) / abs(b)) for nm, a, b in zip(names, ours, ref, strict=True)},
        {nm: float(abs(a - b) / abs(b)) for nm, a, b in zip(names, nv, ref, strict=True)},
    )


def float32_two_pass_nc1(batches: list[tuple[torch.Tensor, torch.Tensor]], k: int, d: int) -> float:
    """NC1 the way public neural-collapse libraries compute it, written here only as the baseline: a class-mean
    pass, then a covariance pass of (x − μ_y)ᵀ(x − μ_y) with float32 torch GEMMs, then Tr(Σ_W Σ_B⁺)/K."""
    device = batches[0][0].device
    sums = torch.zeros(k, d, device=device)
    counts = torch.zeros(k, device=device)
    for x, y in batches:
        sums.index_add_(0, y, x)
        counts.index_add_(0, y, torch.ones(len(y), device=device))
    mu = sums / counts[:, None]
    sigma_w = torch.zeros(d, d, device=device)
    for x, y in batches:
        centred = x - mu[y]
        sigma_w += centred.T @ centred
    sigma_w /= counts.sum()
    mc = mu - mu.mean(0)
    sigma_b = mc.T @ mc / k
    return float(torch.trace(sigma_w @ torch.linalg.pinv(sigma_b)) / k)


def one_pass_vs_float32_route(sec: Section, quick: bool, device: str) -> None:
    """The route `measure` takes (one pass, ClassStats with the scatter, then NC1) against the float32 two-pass
    route, on batches of 1,000; and both against a float64 reference."""
    n, d, k, batch = (10_000, 512, 10, 1_000) if quick else (50_000, 1_024, 10, 1_000)
    numpy_batches = make_batches(n, d, k, batch, seed=3)
    tb = [(torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)) for x, y in numpy_batches]
    batches = tb if device == "cuda" else numpy_batches

    def ours() -> float:
        return M.nc1(stream(batches, True, device))

    t_base = timeit(lambda: float32_two_pass_nc1(tb, k, d), 3, 1, device)
    t_ours = timeit(ours, 3, 1, device)
    x64 = np.concatenate([x for x, _ in numpy_batches]).astype(np.float64)
    y = np.concatenate([y for _, y in numpy_batches])
    exact = M.nc1_two_pass([(x64, y)])  # float64, two passes, no streaming
    x64 = None
    err_ours = abs(ours() / exact - 1.0)
    err_base = abs(float32_two_pass_nc1(tb, k, d) / exact - 1.0)
    ratio_row(sec, f"one pass + NC1 (`measure`'s route), N = {n:,}, d = {d:,}, batches of {batch:,}", t_ours,
              t_base, "float32 two-pass", 1.0)
    sec.add("relative error of that NC1 against a float64 two-pass reference", f"{err_ours:.1e}",
            f"{err_base:.1e} (float32 two-pass)", "", "≤ 1e-10", err_ours <= 1e-10)
    sec.notes.append(
        "The float32 two-pass baseline (`float32_two_pass_nc1` in `benchmarks/metrics_bench.py`) is the route of "
        "public neural-collapse libraries: class means, then Σ_W from (x − μ_y)ᵀ(x − μ_y) in float32 torch, then a "
        "pseudo-inverse. pnc's one pass does one float64 syrk (numpy's symmetric rank-k update, half the flops of "
        "a GEMM at half the float32 rate, gathered over 4 batches) plus the shifted per-class sums."
    )


def run(quick: bool = False, device: str = "cpu") -> Section:
    n, d, k, batch = (10_000, 512, 10, 2_500) if quick else (50_000, 1_024, 10, 5_000)
    n_sub = 100 if quick else 400
    repeat = 3
    sec = Section(
        "Layerwise metrics at CIFAR scale",
        f"N = {n:,} float32 features, d = {d:,}, K = {k}, fed to `ClassStats.update` in batches of {batch:,} "
        f"(device: {device}). Reference (a): one float64 GEMM XᵀX of the same features "
        f"({'torch' if device == 'cuda' else 'numpy'}, already converted to float64, not counted). "
        "Reference (b): the per-sample outer-product loop typical of research code (`research_style_nc1` in "
        f"`benchmarks/metrics_bench.py`), timed on {n_sub} samples and scaled to N. Times are medians of "
        f"{repeat} runs after a warm-up; pnc times include the float32→float64 conversion and input checks.",
    )
    batches = make_batches(n, d, k, batch)
    if device == "cuda":
        batches = [(torch.as_tensor(x, device="cuda"), torch.as_tensor(y, device="cuda")) for x, y in batches]
        xref = torch.cat([x for x, _ in batches]).to(torch.float64)
    else:
        xref = np.concatenate([x for x, _ in batches]).astype(np.float64)
    t_gemm = timeit(lambda: xref.T @ xref, repeat, 1, device)
    xref = None  # free the N×d copy

    t_stats = timeit(lambda: stream(batches, False, device), repeat)
    st_trace = stream(batches, False, device)
    t_c = t_stats + timeit(lambda: M.compression(st_trace), repeat)
    t_d = t_stats + timeit(lambda: M.discrimination(st_trace), repeat)
    t_cd = t_stats + timeit(lambda: (M.compression(st_trace), M.discrimination(st_trace)), repeat)
    t_stats_cov = timeit(lambda: stream(batches, True, device), repeat)
    st = stream(batches, True, device)
    t_nc1 = t_stats_cov + timeit(lambda: M.nc1(st), repeat)
    t_nc1_two = timeit(lambda: M.nc1_two_pass(batches), repeat)
    nc1_gap = abs(M.nc1_two_pass(batches) / M.nc1(st) - 1.0)

    sec.add("ClassStats.update, traces and means only (`track_covariance=False`)", fmt_time(t_stats),
            f"{fmt_time(t_gemm)} (GEMM)", f"{t_stats / t_gemm:.2f}×")
    sec.add("ClassStats.update with the d×d scatter", fmt_time(t_stats_cov),
            f"{fmt_time(t_gemm)} (GEMM)", f"{t_stats_cov / t_gemm:.2f}×")
    ratio_row(sec, "C: stream + `compression`", t_c, t_gemm, "GEMM", 0.2)
    ratio_row(sec, "D: stream + `discrimination`", t_d, t_gemm, "GEMM", 0.2)
    ratio_row(sec, "C and D from one stream", t_cd, t_gemm, "GEMM", 0.2)
    xraw = np.concatenate([np.asarray(x.cpu() if hasattr(x, "cpu") else x) for x, _ in batches])
    yraw = np.concatenate([np.asarray(y.cpu() if hasattr(y, "cpu") else y) for _, y in batches])
    t_raw_c = timeit(lambda: M.compression(xraw, yraw), repeat)
    t_raw_d = timeit(lambda: M.discrimination(xraw, yraw), repeat)
    ratio_row(sec, f"`compression(X, y)` on the raw {n:,}×{d:,} float32 array", t_raw_c, t_gemm, "GEMM", 0.2)
    ratio_row(sec, f"`discrimination(X, y)` on the raw {n:,}×{d:,} float32 array", t_raw_d, t_gemm, "GEMM", 0.2)
    xraw = yraw = None
    ratio_row(sec, "NC1: one stream with the d×d scatter + `nc1`", t_nc1, t_gemm, "GEMM", 2.0)
    ratio_row(sec, "NC1: `nc1_two_pass` (means, then projection on range Σ_B; no d×d scatter)", t_nc1_two,
              t_gemm, "GEMM", 2.0)

    # (b) research-style per-sample loop, on a subset, scaled to N
    sub = []
    left = n_sub
    for x, y in batches:
        if left <= 0:
            break
        sub.append((x[:left], y[:left]))
        left -= len(y[:left])
    # torch's thread pool can be pathological for tiny per-sample ops on a busy machine: time the baseline
    # with the configured thread count and with one thread and keep the faster (the conservative choice)
    threads = torch.get_num_threads()
    best = None
    for nt in sorted({threads, 1}):
        torch.set_num_threads(nt)
        research_style_nc1(sub[:1], k, d, device)  # warm-up
        nc1_base, parts = research_style_nc1(sub, k, d, device)
        parts["threads"] = nt
        if best is None or parts["loop"] < best[1]["loop"]:
            best = (nc1_base, parts)
    torch.set_num_threads(threads)
    nc1_base, parts = best
    scale = n / parts["n"]
    t_base = (parts["means"] + parts["loop"]) * scale + parts["pinv"]
    t_base_c = (parts["means"] + parts["loop"]) * scale
    sub_x = np.concatenate([np.asarray(x.cpu() if hasattr(x, "cpu") else x) for x, _ in sub])
    sub_y = np.concatenate([np.asarray(y.cpu() if hasattr(y, "cpu") else y) for _, y in sub])
    nc1_ours = M.nc1(sub_x, sub_y)
    sec.add("NC1, one stream with the d×d scatter, vs research-style per-sample loop (scaled)", fmt_time(t_nc1),
            f"{fmt_time(t_base)} (loop)", f"{t_base / t_nc1:.0f}× faster")
    ratio_row(sec, "NC1 (`nc1_two_pass`) vs research-style per-sample loop (scaled)", t_nc1_two, t_base, "loop",
              50.0, at_most=False)
    ratio_row(sec, "C vs research-style per-sample loop (scaled)", t_c, t_base_c, "loop", 50.0, at_most=False)
    sec.notes.append(
        f"Baseline ({parts['threads']} torch thread(s), the faster setting) phases on {parts['n']} samples: "
        f"class means {fmt_time(parts['means'])}, per-sample loop "
        f"{fmt_time(parts['loop'])} ({fmt_time(parts['loop'] / parts['n'])} per sample), pseudo-inverse "
        f"{fmt_time(parts['pinv'])}. Same NC1 on that subset: baseline {nc1_base:.10g}, pnc {nc1_ours:.10g} "
        f"(relative difference {abs(nc1_base - nc1_ours) / abs(nc1_ours):.1e}). On all N samples the two NC1 "
        f"paths agree to {nc1_gap:.1e} (relative)."
    )

    # peak memory independent of N
    if device == "cpu":
        n1, n2 = max(4 * batch, n // 5), n
        p1 = peak_stream_memory(n1, d, k, batch)
        p2 = peak_stream_memory(n2, d, k, batch)
        q1 = peak_stream_memory(n1, d, k, batch, two_pass=True)
        q2 = peak_stream_memory(n2, d, k, batch, two_pass=True)
        bound = 8 * (4 * k * d + 2 * d * d) + 8 * stats._BUFFER_ELEMENTS + 4 * 8 * batch * d
        bound_two = 8 * 2 * k * d + 5 * 8 * batch * d
        ok = p2 <= 1.1 * p1 and p2 <= bound
        sec.add(
            f"peak memory, streaming with scatter + NC1, N = {n1:,} → {n2:,}",
            f"{fmt_bytes(p1)} → {fmt_bytes(p2)}",
            f"data: {fmt_bytes(8 * n2 * d)} (float64)",
            f"{p2 / p1:.2f}×",
            f"independent of N, ≤ 8(4Kd + 2d²) + scatter buffer + 4 batches = {fmt_bytes(bound)}",
            ok,
        )
        sec.add(
            f"peak memory, `nc1_two_pass` over a batch generator function, N = {n1:,} → {n2:,}",
            f"{fmt_bytes(q1)} → {fmt_bytes(q2)}",
            f"data: {fmt_bytes(8 * n2 * d)} (float64)",
            f"{q2 / q1:.2f}×",
            f"independent of N, ≤ 16Kd + 5 batches = {fmt_bytes(bound_two)}",
            q2 <= 1.1 * q1 and q2 <= bound_two,
        )
        sec.notes.append(
            "Peak memory: peak growth of the resident set (sampled from /proc every 2 ms) of a fresh process during "
            "the stream, so "
            "torch and numpy allocations both count; includes the generated float32 batches, the float64 working "
            f"rows and the CPU scatter buffer ({fmt_bytes(8 * stats._BUFFER_ELEMENTS)}: small batches are gathered "
            "for one syrk)."
        )

    one_pass_vs_float32_route(sec, quick, device)

    ours, naive = stability(device)
    worst = max(ours.values())
    sec.add(
        "numerical stability, features + 1e6 (N = 20,000, d = 64): max relative error of Tr Σ_W, C, NC1",
        f"{worst:.1e}",
        "float64 two-pass on the offset-free cloud",
        "",
        "≤ 1e-8",
        worst <= 1e-8,
    )
    sec.notes.append(
        "Relative errors with the offset: pnc "
        + ", ".join(f"{k_}: {v:.1e}" for k_, v in ours.items())
        + "; textbook E[xxᵀ] − μμᵀ: "
        + ", ".join(f"{k_}: {v:.1e}" for k_, v in naive.items())
        + "."
    )
    return sec
