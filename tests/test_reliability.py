"""Reliability of the metrics under odd and adversarial input, and security basics of the package.

Complements tests/test_metrics_properties.py (scale in [1e-3, 1e3], rotation, permutation, label renaming and
split/merge order on float64 numpy data): here the properties range over containers (numpy/torch), dtypes
(float16/bfloat16/float32/float64), extreme scales and offsets, degenerate class structures and batchings. A
metric must return a correct finite value or raise a ValueError that says what is wrong, never NaN or inf.
"""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import pnc
from pnc import metrics as M

SETTINGS = settings(max_examples=30, deadline=None)
PNC = Path(pnc.__file__).resolve().parent

METRICS = {
    "compression": M.compression,
    "discrimination": M.discrimination,
    "nc1": M.nc1,
    "cdnv": M.cdnv,
    "nc2_etf": lambda x, y: M.nc2(x, y).etf_error,
    "nc2_equinorm": lambda x, y: M.nc2(x, y).equinorm,
}


def evaluate(x, y) -> dict[str, float | str]:
    """Every metric's value, or the text of its ValueError; anything else (or a non-finite value) fails."""
    out: dict[str, float | str] = {}
    for name, f in METRICS.items():
        try:
            v = float(f(x, y))
        except ValueError as err:
            assert str(err), f"{name}: empty error message"
            out[name] = f"ValueError: {err}"
            continue
        assert math.isfinite(v), f"{name} returned {v}"
        out[name] = v
    return out


def values(res: dict[str, float | str]) -> dict[str, float]:
    return {k: v for k, v in res.items() if isinstance(v, float)}


def assert_same(a: dict, b: dict, rtol: float, atol: float = 1e-12) -> None:
    """Same errors on both sides, and values equal to rtol."""
    assert {k for k, v in a.items() if isinstance(v, str)} == {k for k, v in b.items() if isinstance(v, str)}
    for k, v in values(a).items():
        assert v == pytest.approx(b[k], rel=rtol, abs=atol), k


KINDS = ("generic", "constant", "duplicated", "singletons", "collinear_means", "coincident_means", "zero_column")


@st.composite
def datasets(draw, kinds=KINDS):
    """(x float64 (N, d), y, rng, kind): random shapes and class sizes, optionally made degenerate."""
    k = draw(st.integers(2, 5))
    d = draw(st.integers(1, 8))
    counts = draw(st.lists(st.integers(1, 9), min_size=k, max_size=k))
    labels = np.array(draw(st.lists(st.integers(-20, 1000), min_size=k, max_size=k, unique=True)))
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cls = np.repeat(np.arange(k), counts)
    centres = rng.normal(size=(k, d)) * draw(st.sampled_from([0.1, 1.0, 5.0]))
    if kind == "collinear_means":
        centres = np.outer(rng.normal(size=k), rng.normal(size=d)) + rng.normal(size=d)
    if kind == "coincident_means":
        centres[1] = centres[0]
    x = centres[cls] + rng.normal(size=(cls.size, d))
    if kind == "constant":
        x = np.broadcast_to(rng.normal(size=d), x.shape).copy()
    elif kind == "duplicated":
        x = centres[cls].copy()  # every sample equals its class centre: zero within-class spread
    elif kind == "singletons":
        keep = np.concatenate([np.flatnonzero(cls == j)[:1] for j in range(k)])
        x, cls = x[keep], cls[keep]
    elif kind == "zero_column":
        x[:, 0] = 0.0
    y = labels[cls]
    p = rng.permutation(y.size)
    return x[p], y[p], rng, kind


CONTAINERS = [
    ("numpy", np.float64),
    ("numpy", np.float32),
    ("numpy", np.float16),
    ("torch", torch.float64),
    ("torch", torch.float32),
    ("torch", torch.float16),
    ("torch", torch.bfloat16),
]


def convert(x: np.ndarray, container, dtype):
    """x in the given container/dtype, and the float64 numpy array holding exactly the same values."""
    if container == "numpy":
        xc = x.astype(dtype)
        return xc, xc.astype(np.float64)
    xc = torch.tensor(x, dtype=dtype)
    return xc, xc.to(torch.float64).numpy()


@SETTINGS
@given(datasets(), st.sampled_from(CONTAINERS), st.booleans())
def test_any_container_and_dtype_gives_the_float64_result_exactly(data, spec, torch_labels):
    """numpy/torch inputs of any float dtype give bit-for-bit the result of their values in float64, and every
    metric is finite or a ValueError (never NaN/inf), also for degenerate class structures."""
    x, y, _, _ = data
    xc, x64 = convert(x, *spec)
    yc = torch.tensor(y) if torch_labels else y
    assert evaluate(xc, yc) == evaluate(x64, y)


@SETTINGS
@given(datasets(kinds=("generic", "duplicated", "singletons", "collinear_means")),
       st.sampled_from([1e-30, 1e-12, 1e12, 1e30]), st.booleans())
def test_extreme_scales_are_invariant(data, scale, negative):
    """C, D, NC1, NC2 and CDNV are scale-invariant; that holds down to 1e-30 and up to 1e30."""
    x, y, _, _ = data
    c = -scale if negative else scale
    assert_same(evaluate(c * x, y), evaluate(x, y), rtol=1e-9)


@pytest.mark.parametrize("scale", [1e-120, 1e120, 1e300])
def test_magnitudes_beyond_float64_second_moments_raise(scale):
    x, y, _, _ = _fixed()
    for f in METRICS.values():
        with pytest.raises(ValueError, match="rescale"):
            f(x * scale, y)


@SETTINGS
@given(datasets(kinds=("generic", "duplicated", "collinear_means")), st.sampled_from([1e2, 1e4, 1e6]),
       st.booleans())
def test_translation_invariance_with_large_offsets(data, offset, negative):
    """Translation leaves Σ_W and Σ_B, so C, NC1, CDNV and NC2, unchanged; offsets up to 1e6 times the spread
    lose no accuracy (no E[xxᵀ] − μμᵀ cancellation). D uses uncentred means and is excluded."""
    x, y, rng, _ = data
    shift = (-offset if negative else offset) * (1.0 + rng.random(x.shape[1]))
    a, b = evaluate(x + shift, y), evaluate(x, y)
    a.pop("discrimination"), b.pop("discrimination")
    assert {k for k, v in a.items() if isinstance(v, str)} == {k for k, v in b.items() if isinstance(v, str)}
    # The offset data carry offset·eps of rounding per entry, so each class mean is off by about offset·eps, and a
    # distance Δ between class means by that much too. Ratios over squared mean distances (C, NC1, CDNV ~ V/Δ² with
    # V ~ 1 here) then move by 2·offset·eps/Δ ≈ 2·offset·eps·sqrt(value) relative: nearly coincident means
    # ("collinear_means" data, CDNV ~ 1e7) are ill-conditioned whatever the algorithm.
    eps = np.finfo(np.float64).eps
    for k in values(a).keys() & values(b).keys():
        rel = 1e-6 + 8 * offset * eps * np.sqrt(max(abs(b[k]), 1.0)) if k in ("compression", "nc1", "cdnv") else 1e-6
        assert a[k] == pytest.approx(b[k], rel=rel, abs=1e-12 * offset), k


@SETTINGS
@given(datasets(), st.integers(2, 4))
def test_replicating_every_sample_changes_nothing(data, r):
    """The metrics are functions of class means and covariances, which replication leaves unchanged."""
    x, y, _, _ = data
    assert_same(evaluate(np.tile(x, (r, 1)), np.tile(y, r)), evaluate(x, y), rtol=1e-9)


@SETTINGS
@given(datasets(kinds=("generic", "duplicated", "singletons", "zero_column")), st.sampled_from(CONTAINERS[:5]),
       st.data())
def test_streaming_equals_one_shot_for_any_batching_and_container(data, spec, draw):
    """Batches of any size (1 included, classes missing from a batch), as torch or numpy, in any float dtype,
    streamed or merged, give the one-shot statistics; trace-only stats give the same traces bit for bit."""
    x, y, _, _ = data
    xc, x64 = convert(x, *spec)
    n = y.size
    cuts = sorted(draw.draw(st.sets(st.integers(1, n - 1), max_size=5)))
    bounds = [0, *cuts, n]
    full = M.ClassStats()
    trace_only = M.ClassStats(track_covariance=False)
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        full.update(xc[a:b], y[a:b])
        trace_only.update(xc[a:b], y[a:b])
        parts.append(M.ClassStats().update(xc[a:b], torch.tensor(y[a:b])))
    merged = parts[0]
    for p in parts[1:]:
        merged = p.merge(merged) if draw.draw(st.booleans()) else merged.merge(p)
    one = M.ClassStats().update(x64, y)
    for s in (full, merged, trace_only):
        np.testing.assert_array_equal(s.classes, one.classes)
        np.testing.assert_array_equal(s.counts, one.counts)
        np.testing.assert_allclose(s.means, one.means, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(s.class_sum_squares, one.class_sum_squares, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(full.sigma_w(), one.sigma_w(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(merged.sigma_w(), one.sigma_w(), rtol=1e-9, atol=1e-12)
    assert trace_only.class_sum_squares.tolist() == full.class_sum_squares.tolist()
    assert trace_only.means.tolist() == full.means.tolist()
    if one.num_classes >= 2:
        assert_same(evaluate(full, None), evaluate(one, None), rtol=1e-8)


def _fixed():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], 6)
    x = rng.normal(size=(18, 5)) + 3 * np.eye(3, 5)[y]
    return x, y, rng, "generic"


def test_degenerate_inputs_give_correct_values_or_named_errors():
    x, y, rng, _ = _fixed()
    # constant features: no between-class scatter; D = 0 to rounding (all means equal)
    const = np.ones_like(x)
    res = evaluate(const, y)
    assert res["discrimination"] == pytest.approx(0.0, abs=1e-15)
    assert "between-class scatter is zero" in res["compression"]
    assert "between-class scatter is zero" in res["nc1"]
    assert "coincide" in res["cdnv"]
    # all-zero features: D's cosine is undefined and says so
    assert "class mean is zero" in evaluate(np.zeros_like(x), y)["discrimination"]
    # duplicated samples (each equal to its class mean): C = NC1 = CDNV = 0, to rounding
    dup = 3 * np.eye(3, 5)[y] + 1.0
    res = evaluate(dup, y)
    for k in ("compression", "nc1", "cdnv"):
        assert 0.0 <= res[k] < 1e-25, k
    # one sample per class
    res = evaluate(x[[0, 6, 12]], y[[0, 6, 12]])
    assert res["compression"] == 0.0 and res["nc1"] == 0.0


@pytest.mark.parametrize("eps", [0.0, 1e-14, 1e-9])
def test_near_singular_between_class_scatter(eps):
    """Collinear class means (rank-1 Σ_B) and tiny departures from it: NC1 stays finite and non-negative,
    with the pseudo-inverse keeping only the directions above rcond."""
    rng = np.random.default_rng(0)
    k, d = 4, 6
    means = np.outer(np.arange(k, dtype=float), np.ones(d)) + eps * rng.normal(size=(k, d))
    y = np.repeat(np.arange(k), 20)
    noise = 0.1 * rng.normal(size=(y.size, d))
    for c in range(k):  # zero-mean noise per class: the sample means are exactly `means` (to rounding)
        noise[y == c] -= noise[y == c].mean(axis=0)
    x = means[y] + noise
    value, rank = M.nc1(x, y, return_rank=True)
    assert math.isfinite(value) and value >= 0.0
    assert 1 <= rank <= k - 1
    if eps == 0.0:
        assert rank == 1
    assert all(isinstance(v, float) for v in evaluate(x, y).values())


def test_low_precision_overflow_is_reported():
    x, y, _, _ = _fixed()
    xh = torch.tensor(x * 1e5, dtype=torch.float16)  # 1e5 overflows float16: inf entries
    assert torch.isinf(xh).any()
    with pytest.raises(ValueError, match="NaN or inf"):
        M.compression(xh, y)


def test_measure_reports_undefined_metrics_loudly():
    """A dead layer (all-zero features) gives NaN in the report only with a RuntimeWarning and a note."""
    x, y, _, _ = _fixed()
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.fill_(-1.0)  # ReLU output is identically zero
    with pytest.warns(RuntimeWarning, match="undefined"):
        report = pnc.measure(model, (torch.tensor(x, dtype=torch.float32), torch.tensor(y)),
                             metrics=("compression", "discrimination"))
    row = report[report.names.index("1")]
    assert math.isnan(row["compression"]) and "between-class scatter is zero" in row["note"]
    assert math.isfinite(report[0]["compression"])  # the input layer is fine


# ----------------------------------------------------------------------------------------------------------
# security basics
# ----------------------------------------------------------------------------------------------------------


def _sources():
    files = sorted(PNC.rglob("*.py"))
    assert len(files) >= 10
    return [(f, ast.parse(f.read_text(), filename=str(f))) for f in files]


def _call_name(node: ast.Call) -> str:
    parts = []
    f = node.func
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return ".".join(reversed(parts))


def _kw(node: ast.Call, name: str):
    for kw in node.keywords:
        if kw.arg == name:
            return kw.value
    return None


def test_every_torch_load_uses_weights_only():
    bad = []
    for f, tree in _sources():
        torch_load_aliases = {"torch.load"}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "torch":
                torch_load_aliases |= {a.asname or a.name for a in node.names if a.name == "load"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node) in torch_load_aliases:
                wo = _kw(node, "weights_only")
                if not (isinstance(wo, ast.Constant) and wo.value is True):
                    bad.append(f"{f.relative_to(PNC)}:{node.lineno}")
    assert not bad, f"torch.load without weights_only=True at {bad}"


def test_no_pickle_for_loading_data():
    forbidden_modules = {"pickle", "cPickle", "_pickle", "dill", "joblib", "shelve", "marshal"}
    bad = []
    for f, tree in _sources():
        where = f.relative_to(PNC)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                bad += [f"{where}:{node.lineno} import {a.name}" for a in node.names
                        if a.name.split(".")[0] in forbidden_modules]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in forbidden_modules:
                bad.append(f"{where}:{node.lineno} from {node.module}")
            elif isinstance(node, ast.Call):
                name = _call_name(node)
                if name.endswith(("read_pickle", "pickle.load", "pickle.loads")):
                    bad.append(f"{where}:{node.lineno} {name}")
                if name in {"np.load", "numpy.load"}:
                    ap = _kw(node, "allow_pickle")
                    if ap is not None and not (isinstance(ap, ast.Constant) and ap.value is False):
                        bad.append(f"{where}:{node.lineno} np.load(allow_pickle=...)")
    assert not bad, f"pickle-based loading in pnc: {bad}"


def test_security_checks_catch_violations(tmp_path, monkeypatch):
    """The two scanners above do fail on offending code (so they are not vacuous)."""
    (tmp_path / "a.py").write_text("import torch\nx = torch.load('f')\ny = torch.load('g', weights_only=False)\n")
    (tmp_path / "b.py").write_text("import pickle\nimport numpy as np\nz = np.load('h', allow_pickle=True)\n")
    for i in range(10):
        (tmp_path / f"pad{i}.py").write_text("pass\n")
    monkeypatch.setattr(sys.modules[__name__], "PNC", tmp_path)
    with pytest.raises(AssertionError, match=r"a.py:2.*a.py:3"):
        test_every_torch_load_uses_weights_only()
    with pytest.raises(AssertionError, match="import pickle.*allow_pickle"):
        test_no_pickle_for_loading_data()
