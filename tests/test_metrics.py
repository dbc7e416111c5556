"""Metrics against brute-force float64 references, streaming, stability and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pnc import metrics as M
from pnc._checks import as_features, as_labels, check_classes

RTOL = 1e-9
CLASSES = np.array([3, 8, 20])


# ---------------------------------------------------------------------------------------------------------
# brute-force reference, written out explicitly
# ---------------------------------------------------------------------------------------------------------


def ref(x: np.ndarray, y: np.ndarray, centre: str = "sample_mean") -> dict:
    classes = np.unique(y)
    k = len(classes)
    n = len(x)
    mus = np.stack([x[y == c].mean(axis=0) for c in classes])
    # centre of Sigma_B: the mean of all samples (default) or the unweighted mean of the class means
    mu = x.mean(axis=0) if centre == "sample_mean" else mus.mean(axis=0)
    d = x.shape[1]
    sw = np.zeros((d, d))
    for i, c in enumerate(classes):
        for z in x[y == c]:
            sw += np.outer(z - mus[i], z - mus[i])
    sw /= n
    sb = np.zeros((d, d))
    for m in mus:
        sb += np.outer(m - mu, m - mu)
    sb /= k
    var = np.array([np.mean(np.sum((x[y == c] - mus[i]) ** 2, axis=1)) for i, c in enumerate(classes)])
    return {"classes": classes, "mus": mus, "mu": mu, "sw": sw, "sb": sb, "k": k, "var": var}


def make_data(seed: int = 0, d: int = 6, counts=(7, 19, 31), classes=CLASSES, offset: float = 0.0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(c, lab) for c, lab in zip(counts, classes, strict=True)])
    centres = rng.normal(size=(len(classes), d)) * 2.0
    idx = np.searchsorted(classes, y)
    x = centres[idx] + rng.normal(size=(len(y), d)) + offset
    perm = rng.permutation(len(y))
    return x[perm], y[perm]


def close(a, b, rtol=RTOL):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=0)


# ---------------------------------------------------------------------------------------------------------
# ClassStats and the metric definitions
# ---------------------------------------------------------------------------------------------------------


def test_classstats_matches_reference():
    x, y = make_data()
    r = ref(x, y)
    st = M.ClassStats().update(x, y)
    np.testing.assert_array_equal(st.classes, CLASSES)
    np.testing.assert_array_equal(st.counts, [np.sum(y == c) for c in CLASSES])
    close(st.means, r["mus"])
    close(st.global_mean, r["mu"])
    close(st.sigma_w(), r["sw"])
    close(st.within_scatter, r["sw"])
    close(st.sigma_b(), r["sb"])
    close(st.trace_sigma_w(), np.trace(r["sw"]))
    close(st.trace_sigma_b(), np.trace(r["sb"]))
    close(st.class_variances, r["var"])
    close(st.gram(), x.T @ x)
    assert st.n_samples == len(y) and st.num_classes == 3 and st.dim == 6


# ---------------------------------------------------------------------------------------------------------
# the centre of Sigma_B: sample mean (default) or mean of the class means
# ---------------------------------------------------------------------------------------------------------

UNEVEN = (7, 40, 113)


def _brute_between(x: np.ndarray, y: np.ndarray, centre: str) -> dict:
    """C, NC1 and Sigma_B by explicit loops over samples and classes (float64), independent of ``ref``."""
    classes = np.unique(y)
    d = x.shape[1]
    n_total = 0
    total = np.zeros(d)
    mus = []
    for c in classes:
        members = [z for z, lab in zip(x, y, strict=True) if lab == c]
        s = np.zeros(d)
        for z in members:
            s += z
            total += z
            n_total += 1
        mus.append(s / len(members))
    mu = total / n_total if centre == "sample_mean" else sum(mus) / len(mus)
    sw = np.zeros((d, d))
    for z, lab in zip(x, y, strict=True):
        diff = z - mus[int(np.searchsorted(classes, lab))]
        sw += np.outer(diff, diff)
    sw /= n_total
    sb = sum(np.outer(m - mu, m - mu) for m in mus) / len(mus)
    w, v = np.linalg.eigh(sb)
    keep = w > 1e-10 * w.max()
    sb_pinv = (v[:, keep] / w[keep]) @ v[:, keep].T
    return {"mu": mu, "sb": sb, "C": np.trace(sw) / np.trace(sb), "NC1": np.trace(sw @ sb_pinv) / len(mus)}


@pytest.mark.parametrize("centre", ["sample_mean", "class_means"])
def test_between_centre_matches_brute_force(centre):
    x, y = make_data(21, d=5, counts=UNEVEN)
    r = _brute_between(x, y, centre)
    st = M.ClassStats().update(x, y)
    rtol = 1e-10
    close(st.centre(centre), r["mu"], rtol)
    close(st.sigma_b(between_centre=centre), r["sb"], rtol)
    close(st.trace_sigma_b(between_centre=centre), np.trace(r["sb"]), rtol)
    for source in ((x, y), (st,)):
        close(M.compression(*source, between_centre=centre), r["C"], rtol)
        close(M.nc1(*source, between_centre=centre), r["NC1"], rtol)
    batches = [(x[:50], y[:50]), (x[50:], y[50:])]
    close(M.nc1_two_pass(batches, between_centre=centre), r["NC1"], rtol)
    # streaming and merging stay exact: the sample mean is rebuilt from the merged counts and class means
    a = M.ClassStats().update(x[:13], y[:13])
    b = M.ClassStats().update(x[13:], y[13:])
    merged = b.merge(a)
    close(merged.sigma_b(between_centre=centre), r["sb"], rtol)
    close(M.compression(merged, between_centre=centre), r["C"], rtol)
    close(M.nc1(merged, between_centre=centre), r["NC1"], rtol)


@pytest.mark.parametrize("centre", ["sample_mean", "class_means"])
def test_measure_threads_between_centre(centre):
    from pnc.report import measure, report_from_stats

    x, y = make_data(24, d=5, counts=UNEVEN)
    r = _brute_between(x, y, centre)
    rep = report_from_stats({"z": M.ClassStats().update(x, y)}, ("compression", "nc1"), between_centre=centre)
    close(rep["compression"][0], r["C"], 1e-10)
    close(rep["nc1"][0], r["NC1"], 1e-10)
    model = torch.nn.Sequential(torch.nn.Identity())
    rep = measure(model, (torch.tensor(x), torch.tensor(y)), metrics=("compression", "nc1"), batch_size=33,
                  between_centre=centre)
    for row in rep:  # the input and the identity layer see the same float64 features
        close(row["compression"], r["C"], 1e-10)
        close(row["nc1"], r["NC1"], 1e-10)
    with pytest.raises(ValueError, match="between_centre must be one of"):
        measure(model, (torch.tensor(x), torch.tensor(y)), between_centre="median")


def test_sample_mean_is_the_default_centre():
    x, y = make_data(22, d=5, counts=UNEVEN)
    st = M.ClassStats().update(x, y)
    close(st.global_mean, x.mean(axis=0), 1e-12)
    np.testing.assert_array_equal(st.sigma_b(), st.sigma_b(between_centre="sample_mean"))
    assert M.compression(x, y) == M.compression(x, y, between_centre="sample_mean")
    assert M.nc1(st) == M.nc1(st, between_centre="sample_mean")
    assert M.nc2(st) == M.nc2(st, between_centre="sample_mean")


def test_between_centres_differ_when_imbalanced_and_agree_when_balanced():
    x, y = make_data(23, d=5, counts=UNEVEN)
    for fn in (M.compression, M.nc1):
        a, b = fn(x, y), fn(x, y, between_centre="class_means")
        assert abs(a / b - 1) > 1e-2, fn.__name__
    xb, yb = make_data(23, d=5, counts=(40, 40, 40))
    stb = M.ClassStats().update(xb, yb)
    close(stb.centre("sample_mean"), stb.centre("class_means"), 1e-12)
    close(stb.sigma_b(), stb.sigma_b(between_centre="class_means"), 1e-12)
    for fn in (M.compression, M.nc1):
        close(fn(xb, yb), fn(xb, yb, between_centre="class_means"), 1e-12)
    # quantities built on differences of class means do not depend on the centre at all
    close(M.cdnv(x, y), M.cdnv(M.ClassStats().update(x, y)))


def test_between_centre_validation():
    x, y = make_data()
    st = M.ClassStats().update(x, y)
    calls = [
        lambda c: M.compression(x, y, between_centre=c),
        lambda c: M.nc1(x, y, between_centre=c),
        lambda c: M.nc1(st, between_centre=c),
        lambda c: M.nc1_two_pass([(x, y)], between_centre=c),
        lambda c: M.nc2(st, between_centre=c),
        lambda c: M.nc3(st, np.ones((3, 6)), between_centre=c),
        lambda c: st.sigma_b(between_centre=c),
        lambda c: st.trace_sigma_b(c),
        lambda c: st.centre(c),
    ]
    for call in calls:
        for bad in ("mean", "Sample_Mean", None, 0):
            with pytest.raises(ValueError, match="between_centre must be one of 'sample_mean', 'class_means'"):
                call(bad)
    assert M.BETWEEN_CENTRES == ("sample_mean", "class_means")


def test_trace_without_covariance():
    x, y = make_data(1)
    st = M.ClassStats(track_covariance=False).update(x, y)
    close(st.trace_sigma_w(), np.trace(ref(x, y)["sw"]))
    close(M.compression(st), M.compression(x, y))
    with pytest.raises(ValueError, match="track_covariance"):
        st.sigma_w()
    with pytest.raises(ValueError, match="track_covariance"):
        M.nc1(st)


def test_compression_discrimination_reference():
    x, y = make_data(2)
    r = ref(x, y)
    close(M.compression(x, y), np.trace(r["sw"]) / np.trace(r["sb"]))
    mus = r["mus"]
    best = -np.inf
    for i in range(3):
        for j in range(i + 1, 3):
            best = max(best, mus[i] @ mus[j] / np.linalg.norm(mus[i]) / np.linalg.norm(mus[j]))
    close(M.discrimination(x, y), 1 - best)
    # the pair form, the tuple form and a ClassStats agree
    st = M.ClassStats().update(x, y)
    assert M.compression((x, y)) == M.compression(x, y)
    close(M.discrimination(st), M.discrimination(x, y))


def test_discrimination_is_signed_and_uncentred():
    # two antipodal class means: cosine -1, so D = 2 (signed); an offset moves the uncentred cosine
    x = np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    y = np.array([0, 0, 1, 1])
    assert M.discrimination(x, y) == pytest.approx(2.0)
    assert M.discrimination(x + np.array([0.0, 1.0]), y) == pytest.approx(1.0)


def test_nc1_reference_and_rank():
    x, y = make_data(3)
    r = ref(x, y)
    expect = np.trace(r["sw"] @ np.linalg.pinv(r["sb"], rtol=1e-10, hermitian=True)) / r["k"]
    close(M.nc1(x, y), expect)
    val, rank = M.nc1(x, y, return_rank=True)
    assert rank == 2 and val == M.nc1(x, y)


def test_nc1_zero_when_within_outside_between_subspace():
    # within-class variation along e3, class means in span(e1, e2): NC1 = 0 while C > 0 (theory §5.3)
    means = np.array([[1.0, 0, 0], [0, 1.0, 0], [-1.0, -1.0, 0]])
    noise = np.array([[0, 0, 1.0], [0, 0, -1.0]])
    x = np.concatenate([m + noise for m in means])
    y = np.repeat([0, 1, 2], 2)
    assert M.nc1(x, y) == pytest.approx(0.0, abs=1e-12)
    assert M.compression(x, y) > 0.1


def test_nc2_reference():
    x, y = make_data(4, counts=(5, 9, 13, 6), classes=np.array([1, 4, 5, 9]))
    r = ref(x, y)
    mc = r["mus"] - r["mu"]
    g = mc @ mc.T
    k = 4
    target = (np.eye(k) - np.ones((k, k)) / k) / np.sqrt(k - 1)
    res = M.nc2(x, y)
    close(res.etf_error, np.linalg.norm(g / np.linalg.norm(g) - target))
    norms = np.linalg.norm(mc, axis=1)
    close(res.equinorm, np.std(norms) / np.mean(norms))
    close(M.equinorm(x, y), res.equinorm)


def test_nc2_zero_for_simplex_etf():
    k = 4
    etf = np.eye(k) - 1.0 / k
    x = np.repeat(etf, 3, axis=0)
    y = np.repeat(np.arange(k), 3)
    res = M.nc2(x, y)
    assert res.etf_error == pytest.approx(0, abs=1e-12) and res.equinorm == pytest.approx(0, abs=1e-12)


def test_nc3_reference():
    x, y = make_data(5)
    r = ref(x, y)
    mc = r["mus"] - r["mu"]
    st = M.ClassStats().update(x, y)
    assert M.nc3(st, 3.0 * mc) == pytest.approx(0.0, abs=1e-12)
    w = np.random.default_rng(0).normal(size=(3, 6))
    close(M.nc3(st, w), np.linalg.norm(w / np.linalg.norm(w) - mc / np.linalg.norm(mc)))
    close(M.nc3((x, y), torch.tensor(w)), M.nc3(st, w))
    with pytest.raises(ValueError, match="shape"):
        M.nc3(st, np.ones((21, 6)))


def test_nc4_reference():
    x, y = make_data(6)
    r = ref(x, y)
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(len(y), 3))
    ncc = np.array([CLASSES[np.argmin([np.sum((z - m) ** 2) for m in r["mus"]])] for z in x])
    pred = CLASSES[np.argmax(logits, axis=1)]
    close(M.nc4(x, y, logits), np.mean(pred != ncc))
    # 21 output columns: column j means label value j
    wide = np.full((len(y), 21), -10.0)
    wide[np.arange(len(y)), ncc] = 1.0
    assert M.nc4(x, y, wide) == 0.0
    narrow = np.zeros((len(y), 3))
    narrow[np.arange(len(y)), np.searchsorted(CLASSES, ncc)] = 1.0
    assert M.nc4(x, y, narrow) == 0.0
    with pytest.raises(ValueError, match="columns"):
        M.nc4(x, y, np.zeros((len(y), 5)))


def test_nc4_takes_the_first_argument_forms_of_the_other_metrics():
    x, y = make_data(6)
    logits = np.random.default_rng(1).normal(size=(len(y), 3))
    st = M.ClassStats().update(x, y)
    close(M.nc4((x, y), logits=logits), M.nc4(x, y, logits))
    close(M.nc4(st, logits=logits, features=x), M.nc4(x, y, logits))
    close(M.nc4(st, logits=torch.tensor(logits), features=torch.tensor(x, dtype=torch.float32)), M.nc4(x, y, logits))
    # the class means from a ClassStats of every sample, judged on 10 samples (no labels needed): by hand
    mus = ref(x, y)["mus"]
    some = x[:10]
    nearest = np.array([CLASSES[np.argmin([np.sum((z - m) ** 2) for m in mus])] for z in some])
    close(M.nc4(st, logits=logits[:10], features=some), np.mean(CLASSES[np.argmax(logits[:10], axis=1)] != nearest))


def test_nc4_says_what_to_pass_when_the_per_sample_data_is_missing():
    x, y = make_data(6)
    logits = np.zeros((len(y), 3))
    st = M.ClassStats().update(x, y)
    needs = "nc4 compares each sample's arg-max logit with its nearest class mean, so it needs per-sample data that"
    with pytest.raises(ValueError, match=needs + r" a ClassStats does not hold: pass features= and logits="):
        M.nc4(st)
    with pytest.raises(ValueError, match=needs):
        M.nc4(st, logits=logits)
    with pytest.raises(ValueError, match=needs):
        M.nc4(st, features=x)
    with pytest.raises(ValueError, match="labels must not be given together with a ClassStats"):
        M.nc4(st, y, logits, features=x)
    with pytest.raises(ValueError, match=r"features= is for a ClassStats first argument; with raw features call"):
        M.nc4(x, y, logits, features=x)
    with pytest.raises(ValueError, match=r"nc4 needs the model's logits: nc4\(features, labels, logits\)"):
        M.nc4(x, y)
    with pytest.raises(ValueError, match="features have dimension 5 but the class means 6"):
        M.nc4(st, logits=logits, features=x[:, :5])
    with pytest.raises(ValueError, match="length mismatch: 57 features but 56 logits"):
        M.nc4(st, logits=logits[1:], features=x)


def test_cdnv_reference():
    x, y = make_data(7)
    r = ref(x, y)
    vals = []
    for i in range(3):
        for j in range(3):
            if i != j:
                dist = np.sum((r["mus"][i] - r["mus"][j]) ** 2)
                vals.append((r["var"][i] + r["var"][j]) / (2 * dist))
    close(M.cdnv(x, y), np.mean(vals))


def test_numerical_and_effective_rank_reference():
    x, y = make_data(8, d=10)
    s = np.linalg.svd(x, compute_uv=False)
    for thr in (0.5, 0.9, 0.95, 0.99, 1.0):
        for squared in (False, True):
            v = s**2 if squared else s
            expect = next(r for r in range(1, len(v) + 1) if v[:r].sum() >= thr * v.sum() * (1 - 1e-12))
            assert M.numerical_rank(x, thr, squared=squared) == expect
    st = M.ClassStats().update(x, y)
    close(M.singular_values(st), s, rtol=1e-8)
    assert M.numerical_rank(st) == M.numerical_rank(x)
    p = s / s.sum()
    close(M.effective_rank(x), np.exp(-np.sum(p * np.log(p))))
    # exact cases: r equal singular values
    q = np.linalg.qr(np.random.default_rng(0).normal(size=(20, 20)))[0]
    z = q[:, :4] @ np.eye(4, 7)
    assert M.numerical_rank(z, 0.95) == 4
    assert M.effective_rank(z) == pytest.approx(4.0)


def _ref_rate(z: np.ndarray, e2: float) -> float:
    # z is d×N here, as in the definition
    d, n = z.shape
    return 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * e2) * z @ z.T)[1]


@pytest.mark.parametrize("d", [5, 40])
def test_coding_rate_reference(d):
    x, y = make_data(9, d=d)
    e2 = 0.25
    close(M.coding_rate(x, eps=0.5), _ref_rate(x.T, e2))
    close(M.coding_rate(x, eps_sq=e2), _ref_rate(x.T, e2))
    rc = sum((np.sum(y == c) / len(y)) * _ref_rate(x[y == c].T, e2) for c in CLASSES)
    close(M.class_coding_rate(x, y, eps=0.5), rc)
    close(M.rate_reduction(x, y, eps_sq=e2), _ref_rate(x.T, e2) - rc)


def test_coding_rate_eps_arguments():
    x, _ = make_data()
    with pytest.raises(ValueError, match="exactly one"):
        M.coding_rate(x)
    with pytest.raises(ValueError, match="exactly one"):
        M.coding_rate(x, eps=0.5, eps_sq=0.25)
    with pytest.raises(ValueError, match="positive"):
        M.coding_rate(x, eps_sq=-1.0)


# ---------------------------------------------------------------------------------------------------------
# streaming
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_streaming_equals_one_shot(seed):
    x, y = make_data(seed, counts=(3, 40, 11))
    rng = np.random.default_rng(100 + seed)
    cuts = np.sort(rng.choice(np.arange(1, len(y)), size=rng.integers(1, 8), replace=False))
    splits = zip(np.split(x, cuts), np.split(y, cuts), strict=True)
    parts = [M.ClassStats().update(xb, yb) for xb, yb in splits]
    # merge in a random order, pairwise as a tree
    rng.shuffle(parts)
    while len(parts) > 1:
        i = int(rng.integers(0, len(parts) - 1))
        parts[i : i + 2] = [parts[i + 1].merge(parts[i])]
    merged = parts[0]
    sequential = M.ClassStats()
    for xb, yb in zip(np.split(x, cuts), np.split(y, cuts), strict=True):
        sequential.update(xb, yb)
    one = M.ClassStats().update(x, y)
    for st in (merged, sequential):
        np.testing.assert_array_equal(st.classes, one.classes)
        np.testing.assert_array_equal(st.counts, one.counts)
        close(st.means, one.means)
        close(st.sigma_w(), one.sigma_w())
        close(st.trace_sigma_w(), one.trace_sigma_w())
        close(M.compression(st), M.compression(one))
        close(M.nc1(st), M.nc1(one))


@pytest.mark.parametrize("seed", range(4))
def test_nc1_two_pass_equals_the_scatter_path(seed):
    x, y = make_data(seed, d=9, counts=(5, 30, 12))
    cuts = np.sort(np.random.default_rng(seed).choice(np.arange(1, len(y)), size=4, replace=False))
    batches = list(zip(np.split(x, cuts), np.split(y, cuts), strict=True))
    scatter = M.ClassStats()
    for xb, yb in batches:
        scatter.update(xb, yb)
    expect, rank = M.nc1(scatter, return_rank=True)
    r = ref(x, y)
    close(expect, np.trace(r["sw"] @ np.linalg.pinv(r["sb"], rtol=1e-10, hermitian=True)) / r["k"])
    for source in (batches, tuple(batches), lambda: iter(batches), lambda: ((a, b) for a, b in batches)):
        value, got_rank = M.nc1_two_pass(source, return_rank=True)
        close(value, expect)
        assert got_rank == rank == 2
    torch_batches = [(torch.tensor(xb), torch.tensor(yb)) for xb, yb in batches]
    close(M.nc1_two_pass(torch_batches), expect)
    close(M.nc1(x, y), expect)  # raw features take the two-pass route on one batch


def test_nc1_two_pass_with_a_large_offset():
    rng = np.random.default_rng(3)
    n, d, k = 4000, 12, 4
    y = rng.integers(0, k, size=n)
    z = rng.normal(size=(k, d))[y] + rng.normal(size=(n, d))
    x = z + 1e6
    z = x - 1e6  # exact (Sterbenz): the same cloud without the offset
    r = ref(z, y)
    expect = np.trace(r["sw"] @ np.linalg.pinv(r["sb"], rtol=1e-10, hermitian=True)) / k
    batches = list(zip(np.array_split(x, 7), np.array_split(y, 7), strict=True))
    close(M.nc1_two_pass(batches), expect, rtol=1e-8)


def test_nc1_two_pass_refuses_one_shot_and_changing_batches():
    x, y = make_data(5)
    batches = [(x[:20], y[:20]), (x[20:], y[20:])]
    with pytest.raises(ValueError, match="one-shot iterator"):
        M.nc1_two_pass(iter(batches))
    with pytest.raises(ValueError, match="one-shot iterator"):
        M.nc1_two_pass(b for b in batches)
    with pytest.raises(ValueError, match="iterable of"):
        M.nc1_two_pass(3)
    with pytest.raises(ValueError, match="pair"):
        M.nc1_two_pass([x])
    with pytest.raises(ValueError, match="rcond"):
        M.nc1_two_pass(batches, rcond=float("nan"))

    def changing(second):
        calls = []

        def source():
            calls.append(1)
            return batches if len(calls) == 1 else second

        return source

    fewer = batches[:1]
    bad_label = [(x[:20], np.full(20, 99)), batches[1]]
    wider = [(np.hstack([x[:20], x[:20]]), y[:20]), batches[1]]
    nan = [(np.where(np.arange(20)[:, None] == 4, np.nan, x[:20]), y[:20]), batches[1]]
    for second, match in [(fewer, "samples"), (bad_label, "unseen class"), (wider, "shape"), (nan, "NaN")]:
        with pytest.raises(ValueError, match=match):
            M.nc1_two_pass(changing(second))
    with pytest.raises(ValueError, match="at least two classes"):
        M.nc1_two_pass([(x[y == 3], y[y == 3])])


def test_merge_disjoint_classes_and_empty():
    x, y = make_data(11)
    a = M.ClassStats().update(x[y == 3], y[y == 3])
    b = M.ClassStats().update(x[y != 3], y[y != 3])
    one = M.ClassStats().update(x, y)
    m = b + a
    close(m.sigma_w(), one.sigma_w())
    assert (m.merge(M.ClassStats()).counts == one.counts).all()
    assert (M.ClassStats().merge(m).counts == one.counts).all()
    m.reset()
    assert m.num_classes == 0
    with pytest.raises(ValueError, match="empty"):
        _ = m.means


# ---------------------------------------------------------------------------------------------------------
# numerical stability and dtypes
# ---------------------------------------------------------------------------------------------------------


def test_large_offset_trace_is_accurate():
    rng = np.random.default_rng(0)
    n, d = 3000, 4
    y = rng.integers(0, 3, size=n)
    x = 1e8 + rng.normal(size=(n, d)) * 1e-2 + y[:, None] * 1e-2
    z = x - 1e8  # exact (Sterbenz), so z is the same point cloud without the offset
    expect = np.trace(ref(z, y)["sw"])
    one = M.ClassStats().update(x, y)
    close(one.trace_sigma_w(), expect, rtol=1e-9)
    close(np.trace(one.sigma_w()), expect, rtol=1e-9)
    streamed = M.ClassStats()
    for xb, yb in zip(np.array_split(x, 17), np.array_split(y, 17), strict=True):
        streamed.update(xb, yb)
    close(streamed.trace_sigma_w(), expect, rtol=1e-7)
    close(M.compression(streamed), M.compression(z, y), rtol=1e-6)
    # the textbook formula E[xx^T] - mu mu^T is useless here
    naive = 0.0
    for c in range(3):
        xc = x[y == c]
        naive += np.sum(np.mean(xc**2, axis=0) - np.mean(xc, axis=0) ** 2) * len(xc)
    naive /= n
    assert abs(naive - expect) / expect > 1e-2


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_torch_inputs(dtype):
    x, y = make_data(12)
    xt = torch.tensor(x, dtype=dtype)
    x64 = xt.to(torch.float64).numpy()
    close(M.compression(xt, torch.tensor(y)), M.compression(x64, y))
    close(M.nc1(xt, y), M.nc1(x64, y))
    close(M.discrimination(xt, y), M.discrimination(x64, y))
    assert as_features(xt).dtype == np.float64


# ---------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------


def test_length_mismatch():
    x, y = make_data()
    with pytest.raises(ValueError, match=f"length mismatch: {len(x)} features but {len(x) - 1} labels"):
        M.compression(x, y[:-1])
    with pytest.raises(ValueError, match="length mismatch: 100 features but 99 labels"):
        as_labels(np.zeros(99, dtype=int), 100)


def test_fewer_than_two_classes():
    x, y = make_data()
    for fn in (M.compression, M.discrimination, M.nc1, M.cdnv, M.nc2):
        with pytest.raises(ValueError, match="need at least two classes, got 1"):
            fn(x, np.zeros(len(x), dtype=int))
    with pytest.raises(ValueError, match="need at least two classes"):
        check_classes(np.array([4, 4]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_features(bad):
    x, y = make_data()
    x[3, 2] = bad
    with pytest.raises(ValueError, match="features contain NaN or inf values"):
        M.compression(x, y)
    with pytest.raises(ValueError, match="NaN or inf"):
        M.ClassStats().update(torch.tensor(x), y)


def test_non_integer_labels():
    x, y = make_data()
    with pytest.raises(ValueError, match="labels must be integers"):
        M.compression(x, y + 0.5)
    with pytest.raises(ValueError, match="labels must be integers"):
        M.compression(x, y.astype(bool))
    with pytest.raises(ValueError, match="labels must be integers"):
        M.compression(x, y.astype(str))
    # integral floats are fine
    assert M.compression(x, y.astype(float)) == M.compression(x, y)
    assert as_labels(torch.tensor(y)).dtype == np.int64


def test_wrong_dimensions():
    x, y = make_data()
    with pytest.raises(ValueError, match="2-D"):
        M.compression(x[:, :, None], y)
    with pytest.raises(ValueError, match="2-D"):
        M.compression(x[:, 0], y)
    with pytest.raises(ValueError, match="labels must be a 1-D"):
        M.compression(x, y[:, None])
    with pytest.raises(ValueError, match="empty"):
        M.compression(np.zeros((0, 3)), np.zeros(0, dtype=int))


def test_dimension_change_between_updates():
    x, y = make_data()
    st = M.ClassStats().update(x, y)
    with pytest.raises(ValueError, match="dimension changed: expected 6, got 5"):
        st.update(x[:, :5], y)
    with pytest.raises(ValueError, match="dimension changed"):
        st.merge(M.ClassStats().update(x[:, :5], y))
    with pytest.raises(ValueError, match="dimension changed"):
        M.ClassStats(dim=4).update(x, y)


def test_degenerate_between_scatter():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(10, 3))
    z -= z.mean(axis=0)
    x = np.concatenate([z, z[::-1] * 0.5]) + 5.0  # both class means are 5 (to rounding)
    y = np.repeat([0, 1], 10)
    for fn in (M.compression, M.nc1, M.nc2):
        with pytest.raises(ValueError, match=r"between-class scatter is zero \(all class means coincide\)"):
            fn(x, y)
    with pytest.raises(ValueError, match="coincide"):
        M.cdnv(x, y)


def test_zero_class_mean_discrimination():
    x = np.array([[1.0, 0], [-1.0, 0], [2.0, 1.0], [2.0, 1.0]])
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="class mean is zero"):
        M.discrimination(x, y)


def test_labels_with_classstats_rejected():
    x, y = make_data()
    st = M.ClassStats().update(x, y)
    with pytest.raises(ValueError, match="labels must not be given"):
        M.compression(st, y)
    with pytest.raises(ValueError, match="labels are required"):
        M.compression(x)


def test_effective_rank_from_stats_ignores_gram_rounding_noise() -> None:
    """Rank-deficient features: the Gram's zero eigenvalues are rounding noise (±1e-16 λ_max), whose square roots
    (~1e-8 σ_max) used to enter the entropy and depend on the batch order; now stream = SVD of the stored features."""
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    x = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 20)) + y[:, None]  # rank 5 in 20 dimensions
    direct = M.effective_rank(x)
    one = M.effective_rank(M.ClassStats().update(x, y))
    batched = M.ClassStats()
    for start in range(0, 300, 7):
        batched.update(x[start:start + 7], y[start:start + 7])
    assert one == pytest.approx(direct, rel=1e-10)
    assert M.effective_rank(batched) == pytest.approx(direct, rel=1e-10)
