"""Collapse at vocabulary scale (issue #28): C, D, CDNV and NC2 with K = 50,000 classes, in time and peak memory.

Every case runs in a fresh process with one thread (so that its peak resident memory is its own), on random class
means with n samples per class plus noise, labels shuffled. The reference is the untiled float64 route that pnc used
before the tiles (every K×K array formed whole, `untiled_*` below, kept here only as the baseline), at a K where
its K×K arrays fit in memory. Run alone with ``.venv/bin/python -m benchmarks.vocab_bench [--quick]`` (prints the
section), or through ``benchmarks/run.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from ._util import Section, fmt_time

_EPS = np.finfo(np.float64).eps


# -- the baseline: the untiled route before issue #28 (every K×K array formed whole); tests/test_vocab.py checks the
# tiled metrics against it to 1e-12 -------------------------------------------------------------------------------


def untiled_discrimination(st) -> float:
    """D from the whole K×K matrix of cosines of the class means."""
    m = st.means / np.abs(st.means).max()
    u = m / np.sqrt(np.einsum("ij,ij->i", m, m))[:, None]
    cos = u @ u.T
    np.fill_diagonal(cos, -np.inf)
    return float(1.0 - min(max(float(cos.max()), -1.0), 1.0))


def untiled_cdnv(st) -> float:
    """CDNV from the whole K×K matrix of squared distances, close pairs recomputed as differences."""
    m = st.centred_means()
    k = m.shape[0]
    sq = np.einsum("ij,ij->i", m, m)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (m @ m.T), 0.0)
    close = np.argwhere(np.triu(dist <= 1e6 * m.shape[1] * _EPS * (sq[:, None] + sq[None, :]), 1))
    for i in np.unique(close[:, 0]):
        js = close[close[:, 0] == i, 1]
        diff = m[js] - m[i]
        dist[i, js] = dist[js, i] = np.einsum("ij,ij->i", diff, diff)
    np.fill_diagonal(dist, 0.0)
    off = ~np.eye(k, dtype=bool)
    v = st.class_variances
    ratio = (v[:, None] + v[None, :]) / (2.0 * np.where(off, dist, 1.0))
    return float(ratio[off].mean())


def untiled_nc2(st, centre: str = "sample_mean") -> float:
    """NC2's ETF error from the whole K×K Gram of the centred class means."""
    mc = st.centred_means(centre)
    k = mc.shape[0]
    g = mc @ mc.T
    target = (np.eye(k) - np.full((k, k), 1.0 / k)) / np.sqrt(k - 1)
    return float(np.linalg.norm(g / np.linalg.norm(g) - target))


_CASE = """
import json, resource, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from benchmarks import vocab_bench as B
from pnc import metrics as M
k, n, d, route = {args!r}
rng = np.random.default_rng(0)
y = np.repeat(np.arange(k), n)[rng.permutation(k * n)]
z = (rng.standard_normal((k, d), dtype=np.float32)[y] + 0.5 * rng.standard_normal((k * n, d), dtype=np.float32))
out = {{"rss_data": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}}
def timed(name, fn):
    w, c = time.perf_counter(), time.process_time()
    value = fn()
    out[name] = {{"wall": time.perf_counter() - w, "cpu": time.process_time() - c,
                 "value": value if isinstance(value, float) else None}}
    return value
def stream():
    stats = M.ClassStats(track_covariance=False).update(z, y)
    stats.means  # folds the pending sums
    return stats
st = timed("stats", stream)
timed("C", lambda: M.compression(st))
if route == "tiled":
    timed("D", lambda: M.discrimination(st))
    timed("CDNV", lambda: M.cdnv(st))
    timed("NC2", lambda: M.nc2(st).etf_error)
else:
    timed("D", lambda: B.untiled_discrimination(st))
    timed("CDNV", lambda: B.untiled_cdnv(st))
    timed("NC2", lambda: B.untiled_nc2(st))
out["rss_peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(out))
"""


def run_case(k: int, n: int, d: int, route: str) -> dict:
    """One case in a fresh one-thread process: times (wall and CPU) of ClassStats and each metric, peak RSS."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, **{v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    code = _CASE.format(root=root, args=(k, n, d, route))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def _total(case: dict, what: tuple[str, ...]) -> tuple[float, float]:
    return sum(case[w]["wall"] for w in what), sum(case[w]["cpu"] for w in what)


def run(quick: bool = False, device: str = "cpu") -> Section:
    k_big, k_ref = (10_000, 5_000) if quick else (50_000, 10_000)
    n, d = 4, 256
    sec = Section(
        "Collapse at vocabulary scale",
        f"K = {k_big:,} classes, n = {n} samples per class, d = {d} (N = {k_big * n:,} float32 features, labels "
        "shuffled), one thread, each case in a fresh process: `ClassStats.update` on the whole array, then C, D, "
        "CDNV and NC2 on it (what `report_from_features([Z], y)` computes). Times are single runs, wall clock and "
        "the process's CPU time (CPU time is the steadier figure on a shared machine). Peak memory is the process's "
        "peak resident set (`ru_maxrss`), the N×d features included. Reference: the untiled float64 route before "
        f"issue #28 (`untiled_*` in `benchmarks/vocab_bench.py`) at K = {k_ref:,}, where its K×K arrays fit.",
    )
    if device != "cpu":
        sec.notes.append("CPU only: the tiles run in numpy.")
        return sec
    metrics = ("stats", "C", "D", "CDNV", "NC2")
    big = run_case(k_big, n, d, "tiled")
    for name in metrics:
        sec.add(f"{name} at K = {k_big:,}" if name != "stats" else f"`ClassStats.update` at K = {k_big:,}",
                f"{fmt_time(big[name]['wall'])} (CPU {fmt_time(big[name]['cpu'])})")
    wall, cpu = _total(big, metrics)
    sec.add(f"all of it (stats + C, D, CDNV, NC2) at K = {k_big:,}", f"{fmt_time(wall)} (CPU {fmt_time(cpu)})", "",
            "", "≤ 60 s (CPU time)", cpu <= 60.0)
    sec.add(f"peak resident memory at K = {k_big:,}", _gb(big["rss_peak"]),
            f"{_gb(big['rss_data'])} (after generating the features)", "", "≤ 2 GB", big["rss_peak"] <= 2e9)
    small = run_case(k_ref, n, d, "tiled")
    ref = run_case(k_ref, n, d, "untiled")
    for name in ("D", "CDNV", "NC2"):
        rel = abs(small[name]["value"] / ref[name]["value"] - 1.0)
        sec.add(f"{name} at K = {k_ref:,}: tiled vs untiled (CPU time; relative difference {rel:.0e})",
                fmt_time(small[name]["cpu"]), f"{fmt_time(ref[name]['cpu'])} (untiled)",
                f"{small[name]['cpu'] / ref[name]['cpu']:.2f}×", "same value to 1e-12", rel <= 1e-12)
    sec.add(f"peak resident memory at K = {k_ref:,}: tiled vs untiled", _gb(small["rss_peak"]),
            f"{_gb(ref['rss_peak'])} (untiled)", f"{small['rss_peak'] / ref['rss_peak']:.2f}×")
    sec.notes += [
        f"Values at K = {k_big:,}: C = {big['C']['value']:.6g}, D = {big['D']['value']:.6g}, CDNV = "
        f"{big['CDNV']['value']:.6g}, NC2 = {big['NC2']['value']:.6g}.",
        "CDNV forms every pair's distance (K²·d/2 float64 multiply-adds, in tiles of 1448×1448 classes); D finds the "
        "tiles that can hold the largest cosine with a float32 sweep and computes only those in float64; NC2 needs no "
        "K×K array at all (its Frobenius norms come from the d×d Gram of the centred means).",
        "The peer library `neural_collapse` (tiled kernels) could not be installed here: it is not on the package "
        "index this machine reaches, so it is not in this table; issue #28 reports it at K = 10,000 with 1.3 GB and "
        "111 s for CDNV on another machine.",
    ]
    return sec


if __name__ == "__main__":
    import time

    start = time.perf_counter()
    section = run(quick="--quick" in sys.argv)
    section.seconds = time.perf_counter() - start
    print(section.markdown())
