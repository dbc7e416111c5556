"""Figures for the real-data chapters (1, 6, 7): per-layer tables from :mod:`pnc.book.experiments` to plots.

Every function takes the plain ``layers`` lists (dicts with ``layer``, ``kind``, ``compression``, ...) that the
experiments return, so the same code draws book-scale and paper-scale results. Functions return matplotlib
figures and never call ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from pnc.plotting import COLORS, describe, fit_linear

__all__ = [
    "FASHION_MNIST_CLASSES",
    "class_projection",
    "column",
    "depth_view",
    "depths_figure",
    "emergence_figure",
    "epoch_view",
    "feature_scatter",
    "history_fits",
    "layer_curves",
    "linear_part",
    "projection_grid",
    "rank_probe_figure",
    "saturation_layer",
    "train_test_figure",
    "training_curves_figure",
    "transfer_band_figure",
    "transfer_design_view",
    "transfer_figure",
    "transfer_network_view",
]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
"""Fashion-MNIST's class names, in label order 0-9 (for legends)."""

_CLASS_COLORS = ["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d5a97", "#30343f", "#e36414", "#a0a0a0",
                 "#6b3e26"]

_LABELS = {
    "compression": r"compression $C_l$",
    "discrimination": r"discrimination $D_l$",
    "numerical_rank": "numerical rank",
    "probe_accuracy": "probe accuracy (train)",
    "probe_test_accuracy": "probe accuracy (test)",
    "nc1": "NC1",
}


def _check_layers(layers: Sequence[Mapping[str, Any]], name: str = "layers") -> None:
    if not isinstance(layers, Sequence) or len(layers) == 0:
        raise ValueError(f"{name} must be a non-empty list of per-layer dicts")
    if not all(isinstance(r, Mapping) and "layer" in r for r in layers):
        raise ValueError(f"every entry of {name} must be a dict with a 'layer' key")


def column(layers: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """``[row[key] for row in layers]`` as a float array (``None`` or a missing key becomes NaN)."""
    _check_layers(layers)
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in layers], dtype=np.float64)


def saturation_layer(layers: Sequence[Mapping[str, Any]], level: float = 0.99, key: str = "probe_accuracy") -> int:
    """First layer from which ``key`` stays at or above ``level`` to the end (``-1`` if it never does)."""
    v = column(layers, key)
    ok = np.isfinite(v) & (v >= level)
    for i in range(len(v)):
        if ok[i:].all():
            return int(column(layers, "layer")[i])
    return -1


def linear_part(layers: Sequence[Mapping[str, Any]]) -> list[int]:
    """Layer indices of the linear part of a hybrid: the last nonlinear feature (its input) and every linear layer
    after it. Empty for a network without linear layers."""
    _check_layers(layers)
    lin = [int(r["layer"]) for r in layers if r.get("kind") == "linear"]
    if not lin:
        return []
    return list(range(lin[0] - 1, int(layers[-1]["layer"]) + 1))


def _shade_linear(ax: Axes, layers: Sequence[Mapping[str, Any]]) -> None:
    part = linear_part(layers)
    if part:
        ax.axvspan(part[0] - 0.25, part[-1] + 0.25, color="0.9", zorder=0, lw=0)


def layer_curves(
    results: Mapping[str, Sequence[Mapping[str, Any]]],
    keys: Sequence[str] = ("compression", "discrimination"),
    fit_linear_part: bool = True,
    figsize: tuple[float, float] | None = None,
    bands: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]] | None = None,
) -> Figure:
    """One panel per metric in ``keys``, one line per network in ``results`` (``{label: layers}``).

    ``compression`` is drawn on a log axis. With ``fit_linear_part``, the linear part of a hybrid is shaded and
    ``log10 C_l`` over it gets a dotted straight-line fit labelled with its per-layer ratio and R². ``bands``
    (``{label: [layers of each seed]}``) shades the range over several runs of a network in its colour.
    """
    bands = dict(bands or {})
    unknown = sorted(set(bands) - set(results))
    if unknown:
        raise ValueError(f"bands names networks that results does not: {unknown}")
    if not results:
        raise ValueError("results must map at least one label to a layers list")
    keys = list(keys)
    if not keys:
        raise ValueError("keys must name at least one metric")
    fig = Figure(figsize=figsize or (4.2 * len(keys), 3.4), layout="constrained")
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for j, key in enumerate(keys):
        ax = axes[j]
        for i, (label, layers) in enumerate(results.items()):
            _check_layers(layers, f"results[{label!r}]")
            x = column(layers, "layer")
            v = column(layers, key)
            color = COLORS[i % len(COLORS)]
            plot = ax.semilogy if key == "compression" else ax.plot
            runs = bands.get(label)
            if runs:
                for run in runs:
                    _check_layers(run, f"bands[{label!r}]")
                stack = np.array([column(run, key) for run in runs])
                if stack.shape[1] != x.size:
                    raise ValueError(f"bands[{label!r}] must list the same layers as results[{label!r}]")
                ax.fill_between(x, stack.min(axis=0), stack.max(axis=0), color=color, alpha=0.25, lw=0,
                                label=f"{label}: range over {len(runs)} seeds")
            plot(x, v, "o-", color=color, label=label)
            if i == 0 and fit_linear_part:
                _shade_linear(ax, layers)
            part = linear_part(layers)
            if key == "compression" and fit_linear_part and len(part) >= 3:
                c = v[part]
                if np.all(np.isfinite(c)) and np.all(c > 0):
                    slope, icpt, r2 = fit_linear(np.log10(c), np.asarray(part, float))
                    xs = np.asarray(part, float)
                    ax.semilogy(xs, 10 ** (slope * xs + icpt), ":", color="0.3",
                                label=f"fit: ratio {10 ** slope:.2f}, $R^2$ {r2:.3f}")
        ax.set_xlabel("layer $l$")
        ax.set_ylabel(_LABELS.get(key, key))
        ax.legend(fontsize=8)
    return describe(fig, "; ".join(_through_layers(label, layers, keys) for label, layers in results.items()))


def _through_layers(label: str, layers: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> str:
    """``"hybrid: C_l falls from 1.48 at layer 0 to 0.00037 at layer 7, ..."`` for the alternative text."""
    x = column(layers, "layer")
    names = {"compression": "C_l", "discrimination": "D_l", "numerical_rank": "the rank",
             "probe_accuracy": "the probe's training accuracy", "probe_test_accuracy": "the probe's test accuracy"}
    parts = []
    for key in keys:
        v = column(layers, key)
        verb = "falls" if v[-1] < v[0] else "rises" if v[-1] > v[0] else "stays"
        parts.append(f"{names.get(key, key)} {verb} from {v[0]:.3g} at layer {int(x[0])} to {v[-1]:.3g} at layer "
                     f"{int(x[-1])}")
    return f"{label}: " + ", ".join(parts)


def rank_probe_figure(results: Mapping[str, Sequence[Mapping[str, Any]]]) -> Figure:
    """The authors' first figure, re-drawn: numerical rank (left) and linear-probe accuracy (right) per layer.

    Probe accuracy is drawn solid for training accuracy and dashed for test accuracy where present.
    """
    if not results:
        raise ValueError("results must map at least one label to a layers list")
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    ax_r, ax_p = fig.subplots(1, 2)
    for i, (label, layers) in enumerate(results.items()):
        _check_layers(layers, f"results[{label!r}]")
        color = COLORS[i % len(COLORS)]
        x = column(layers, "layer")
        ax_r.plot(x, column(layers, "numerical_rank"), "o-", color=color, label=label)
        ax_p.plot(x, 100 * column(layers, "probe_accuracy"), "o-", color=color, label=f"{label}, train")
        if any(r.get("probe_test_accuracy") is not None for r in layers):
            ax_p.plot(x, 100 * column(layers, "probe_test_accuracy"), "s--", color=color, label=f"{label}, test",
                      alpha=0.8)
    ax_r.set_xlabel("layer $l$")
    ax_r.set_ylabel("numerical rank (95 %)")
    ax_r.legend(fontsize=8)
    ax_p.set_xlabel("layer $l$")
    ax_p.set_ylabel("linear-probe accuracy (%)")
    ax_p.legend(fontsize=8)
    summary = []
    for label, layers in results.items():
        probe = 100 * column(layers, "probe_accuracy")
        top = int(np.argmax(probe >= probe.max() - 0.5))
        summary.append(f"{_through_layers(label, layers, ['numerical_rank'])}; its probe accuracy reaches "
                       f"{probe.max():.1f} % (within 0.5 point) at layer {int(column(layers, 'layer')[top])}")
    return describe(fig, "; ".join(summary))


def train_test_figure(
    results: Mapping[str, tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]],
    fit_layers: Mapping[str, Sequence[int]] | None = None,
) -> Figure:
    """Compression ``C_l`` (left, log axis) and discrimination ``D_l`` (right) per layer on the training split
    (solid) and the held-out split (dashed), one colour per network in ``results`` (``{label: (train, test)}``,
    each a layers list of the same layers).

    With ``fit_layers`` (``{label: layer indices}``), the legend gives the per-layer ratio of a geometric fit of
    ``C_l`` over those layers (:func:`pnc.fits.fit_geometric_rate`) for each split.
    """
    from pnc.fits import fit_geometric_rate

    if not results:
        raise ValueError("results must map at least one label to a (train, test) pair of layers lists")
    fit_layers = dict(fit_layers or {})
    unknown = sorted(set(fit_layers) - set(results))
    if unknown:
        raise ValueError(f"fit_layers names networks that results does not: {unknown}")
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    ax_c, ax_d = fig.subplots(1, 2)
    for i, (label, pair) in enumerate(results.items()):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"results[{label!r}] must be a (train, test) pair of layers lists")
        train, test = pair
        _check_layers(train, f"results[{label!r}] (train)")
        _check_layers(test, f"results[{label!r}] (test)")
        x = column(train, "layer")
        if not np.array_equal(x, column(test, "layer")):
            raise ValueError(f"results[{label!r}]: train and test list different layers")
        color = COLORS[i % len(COLORS)]
        for split, layers, style in (("train", train, "o-"), ("held-out", test, "s--")):
            c = column(layers, "compression")
            name = f"{label}, {split}"
            if label in fit_layers:
                idx = [int(j) for j in fit_layers[label]]
                ratio, _ = fit_geometric_rate(c[idx], x[idx])
                name += f" (ratio {ratio:.2f})"
            ax_c.semilogy(x, c, style, color=color, label=name, alpha=1.0 if split == "train" else 0.85)
            ax_d.plot(x, column(layers, "discrimination"), style, color=color, label=f"{label}, {split}",
                      alpha=1.0 if split == "train" else 0.85)
    for ax, key in ((ax_c, "compression"), (ax_d, "discrimination")):
        ax.set_xlabel("layer $l$")
        ax.set_ylabel(_LABELS[key])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    summary = [f"{label}: C_l at the last layer is {column(train, 'compression')[-1]:.3g} on the training split and "
               f"{column(test, 'compression')[-1]:.3g} on the held-out split"
               for label, (train, test) in results.items()]
    return describe(fig, "; ".join(summary))


def depths_figure(depths: Sequence[Mapping[str, Any]], key: str = "compression") -> Figure:
    """``key`` per layer for networks of several depths (the ``depths`` experiment's ``depths`` list)."""
    if not depths:
        raise ValueError("depths must be a non-empty list of {'depth', 'layers'} dicts")
    fig = Figure(figsize=(6.4, 3.2), layout="constrained")
    ax = fig.subplots()
    for i, d in enumerate(depths):
        if "depth" not in d or "layers" not in d:
            raise ValueError("every entry of depths needs 'depth' and 'layers'")
        x, v = column(d["layers"], "layer"), column(d["layers"], key)
        plot = ax.semilogy if key == "compression" else ax.plot
        plot(x, v, "o-", color=COLORS[i % len(COLORS)], label=f"L = {d['depth']}")
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(_LABELS.get(key, key))
    ax.legend()
    return fig


def _plain_log_axis(axis: Any, limits: tuple[float, float]) -> None:
    """Log-axis ticks written as plain numbers (``0.2``, not ``2×10⁻¹``): at 1, 2 and 5 times powers of ten over at
    most two decades, at powers of ten otherwise."""
    subs = (1.0, 2.0, 5.0) if limits[1] / limits[0] <= 150 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())


def _metric_limits(tables: Sequence[Sequence[Mapping[str, Any]]], key: str) -> tuple[float, float]:
    """y limits that hold ``key`` of every table: log limits for compression, from 0 otherwise."""
    v = np.concatenate([column(t, key) for t in tables])
    v = v[np.isfinite(v)]
    if key == "compression":
        v = v[v > 0]
        return (float(v.min()) / 1.4, float(v.max()) * 1.4) if v.size else (1e-3, 10.0)
    top = float(v.max()) if v.size else 1.0
    return 0.0, (max(1.0, 1.05 * top) if key == "discrimination" else 1.1 * top)


def depth_view(depths: Sequence[Mapping[str, Any]], depth: int, metric: str = "compression") -> Figure:
    """Explorer frame: ``metric`` per layer for the network of the given ``depth`` (in colour), the other depths of
    ``depths`` in grey behind it. The axes hold every depth, so they change only with ``metric``."""
    if not depths or not all("depth" in d and "layers" in d for d in depths):
        raise ValueError("depths must be a non-empty list of {'depth', 'layers'} dicts")
    entry = [d for d in depths if int(d.get("depth", -1)) == int(depth)]
    if not entry:
        raise ValueError(f"no network of depth {depth}; have {[d.get('depth') for d in depths]}")
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.subplots()
    log = metric == "compression"
    plot = ax.semilogy if log else ax.plot
    others = [d for d in depths if d is not entry[0]]
    for i, d in enumerate(others):
        plot(column(d["layers"], "layer"), column(d["layers"], metric), "-", color="0.75", lw=1.5,
             label="other depths" if i == 0 else None, zorder=1)
    chosen = entry[0]["layers"]
    plot(column(chosen, "layer"), column(chosen, metric), "o-", color=COLORS[0], label=f"L = {int(depth)}",
         zorder=2)
    last = max(float(np.nanmax(column(d["layers"], "layer"))) for d in depths)
    ax.set_xlim(-0.3, last + 0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    limits = _metric_limits([d["layers"] for d in depths], metric)
    ax.set_ylim(*limits)
    if log:
        _plain_log_axis(ax.yaxis, limits)
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(_LABELS.get(metric, metric))
    ax.legend(loc="lower right" if metric == "discrimination" else "upper right")
    return fig


def transfer_figure(heads: Sequence[Mapping[str, Any]]) -> Figure:
    """Left: ``C`` of the pre-head features against the number of head layers; right: transfer accuracy."""
    if not heads:
        raise ValueError("heads must be a non-empty list of per-head-depth dicts")
    for h in heads:
        if not {"head_layers", "compression", "transfer_accuracy"} <= set(h):
            raise ValueError("every entry of heads needs 'head_layers', 'compression' and 'transfer_accuracy'")
    h = np.array([r["head_layers"] for r in heads], dtype=float)
    fig = Figure(figsize=(9.0, 3.2), layout="constrained")
    ax_c, ax_a = fig.subplots(1, 2)
    ax_c.semilogy(h, [r["compression"] for r in heads], "o-", color=COLORS[0])
    ax_c.set_xlabel("projection-head layers $h$")
    ax_c.set_ylabel(r"$C$ of the pre-head features")
    ax_a.plot(h, [100 * r["transfer_accuracy"] for r in heads], "o-", color=COLORS[1])
    ax_a.set_xlabel("projection-head layers $h$")
    ax_a.set_ylabel("held-out probe accuracy (%)")
    for ax in (ax_c, ax_a):
        ax.set_xticks(h)
    return fig


def transfer_network_view(heads: Sequence[Mapping[str, Any]], head_layers: int,
                          layers: Sequence[Mapping[str, Any]] | None = None) -> Figure:
    """Explorer frame for the ``transfer`` experiment: ``C_l`` through the pretrained network with the cut between
    the kept features (extractor) and the ``head_layers``-layer projection head marked, and the transfer accuracy of
    the kept features in the title.

    Each entry of ``heads`` gives ``layer`` (index of the kept features) and, in ``"grow"`` mode, its own ``layers``
    table; otherwise the shared ``layers`` table of the one network is used. The axes hold the tables of every head,
    so that they stay put when ``head_layers`` changes.
    """
    match = [r for r in heads if int(r["head_layers"]) == int(head_layers)]
    if not match:
        raise ValueError(f"no entry for head_layers={head_layers}")
    r = match[0]
    table = r.get("layers", layers)
    if table is None or "layer" not in r:
        raise ValueError("need the kept layer index ('layer') and a per-layer table ('layers')")
    tables = [t for t in (h.get("layers", layers) for h in heads) if t is not None]
    cut = int(r["layer"])
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.subplots()
    x, c = column(table, "layer"), column(table, "compression")
    ax.semilogy(x[: cut + 1], c[: cut + 1], "o-", color=COLORS[0], label="kept (extractor)")
    plural = "s" if int(head_layers) != 1 else ""
    ax.semilogy(x[cut:], c[cut:], "s--", color=COLORS[1], label=f"head ({int(head_layers)} layer{plural})")
    ax.axvline(cut, color="0.5", lw=1)
    last = max(float(np.nanmax(column(t, "layer"))) for t in tables)
    ax.set_xlim(-0.3, last + 0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    limits = _metric_limits(tables, "compression")
    ax.set_ylim(*limits)
    _plain_log_axis(ax.yaxis, limits)
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(r"compression $C_l$")
    ax.set_title(f"h = {int(head_layers)}: pre-head C = {r['compression']:.3g}, "
                 f"transfer accuracy {100 * r['transfer_accuracy']:.1f} %")
    ax.legend(loc="upper right")
    return fig


def class_projection(features: Any, labels: Any) -> np.ndarray:
    """Project features onto the top two principal directions of the centred class means (N×2); see
    :func:`pnc.book.experiments.class_mean_projection`."""
    from pnc.book.experiments import class_mean_projection

    return class_mean_projection(features, labels)


def _class_name(k: Any, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 0 <= int(k) < len(class_names):
        return str(class_names[int(k)])
    return str(k)


def _scatter_plane(ax: Axes, p: np.ndarray, y: np.ndarray, max_points: int, class_names: Sequence[str] | None,
                   size: float = 9) -> None:
    """Samples of one layer in the class-mean plane, scaled to [-1, 1] (``C_l`` does not depend on the scale)."""
    keep = np.linspace(0, len(y) - 1, min(max_points, len(y))).astype(int)
    scale = np.abs(p).max() or 1.0
    for i, k in enumerate(np.unique(y)):
        sel = keep[y[keep] == k]
        ax.scatter(p[sel, 0] / scale, p[sel, 1] / scale, s=size, color=_CLASS_COLORS[i % len(_CLASS_COLORS)],
                   label=_class_name(k, class_names), alpha=0.7)
    ax.set_xlim(-1.08, 1.08)  # the same axes at every layer
    ax.set_ylim(-1.08, 1.08)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([-1, 0, 1])
    ax.set_yticks([-1, 0, 1])


def _check_projections(projections: Any) -> np.ndarray:
    proj = np.asarray(projections, dtype=np.float64)
    if proj.ndim != 3 or proj.shape[2] != 2:
        raise ValueError(f"projections must have shape (L, N, 2), got {proj.shape}")
    return proj


def feature_scatter(projections: Any, labels: Any, layer: int, compression: Sequence[float] | None = None,
                    max_points: int = 400, class_names: Sequence[str] | None = None) -> Figure:
    """Explorer frame: the samples at ``layer`` in the plane of their class means, coloured by class.

    ``projections`` has shape ``(L, N, 2)``: per layer, :func:`class_projection` of the features (the ``hybrid``
    experiment returns it as ``arrays["projection"]``). ``class_names`` (e.g. :data:`FASHION_MNIST_CLASSES`) label
    the legend instead of the integer labels.
    """
    proj = _check_projections(projections)
    if not 0 <= int(layer) < proj.shape[0]:
        raise ValueError(f"layer must be in [0, {proj.shape[0] - 1}], got {layer}")
    from pnc._checks import as_labels

    y = as_labels(labels, proj.shape[1])
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    _scatter_plane(ax, proj[int(layer)], y, max_points, class_names)
    ax.set_xlabel("class-mean direction 1")
    ax.set_ylabel("direction 2")
    title = f"layer {int(layer)}"
    if compression is not None:
        title += f": $C_l$ = {float(compression[int(layer)]):.3g}"
    ax.set_title(title)
    ax.legend(title="class", ncol=1 if class_names is not None else 2, loc="center left",
              bbox_to_anchor=(1.02, 0.5), markerscale=2.0, columnspacing=0.8, handletextpad=0.2,
              labelspacing=0.3 if class_names is not None else None)
    return fig


def projection_grid(results: Mapping[str, tuple[Any, Any]], layers: Sequence[int] = (1, 2, 4, 6),
                    class_names: Sequence[str] | None = None, max_points: int = 600) -> Figure:
    """One row per network in ``results`` (``{label: (projections, labels)}``, projections ``(L, N, 2)`` as for
    :func:`feature_scatter`), one column per layer in ``layers``: the samples in the plane of their class means.

    A static counterpart of the authors' UMAP figure (layers 1, 2, 4, 6), with a linear projection instead of UMAP.
    """
    if not results:
        raise ValueError("results must map at least one label to (projections, labels)")
    layers = [int(layer) for layer in layers]
    if not layers:
        raise ValueError("layers must name at least one layer")
    from pnc._checks import as_labels

    fig = Figure(figsize=(2.2 * len(layers) + 1.6, 2.3 * len(results) + 0.3), layout="constrained")
    axes = fig.subplots(len(results), len(layers), squeeze=False)
    for i, (label, (projections, labels)) in enumerate(results.items()):
        proj = _check_projections(projections)
        y = as_labels(labels, proj.shape[1])
        for j, layer in enumerate(layers):
            if not 0 <= layer < proj.shape[0]:
                raise ValueError(f"layer must be in [0, {proj.shape[0] - 1}], got {layer} for {label!r}")
            ax = axes[i, j]
            _scatter_plane(ax, proj[layer], y, max_points, class_names, size=4)
            ax.set_title(f"{label}, layer {layer}", fontsize="medium")
            if i < len(results) - 1:
                ax.set_xticklabels([])
            if j > 0:
                ax.set_yticklabels([])
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, title="class", loc="outside right center", markerscale=2.5, fontsize="small")
    return fig


def _series(name: str, values: Mapping[str, Any], n_heads: int) -> dict[str, np.ndarray]:
    out = {}
    for label, v in values.items():
        a = np.atleast_2d(np.asarray(v, dtype=np.float64))
        if a.ndim != 2 or a.shape[1] != n_heads:
            raise ValueError(f"{name}[{label!r}] must have shape (seeds, {n_heads}), got {a.shape}")
        out[str(label)] = a
    return out


def transfer_band_figure(head_layers: Sequence[int], compression: Mapping[str, Any], accuracy: Mapping[str, Any],
                         reference: Mapping[str, Any] | None = None) -> Figure:
    """The ``transfer`` experiment over several seeds: mean and a band of ± one standard deviation.

    ``compression`` and ``accuracy`` map a label to an array of shape ``(seeds, len(head_layers))``: ``C`` of the
    kept features, and transfer accuracy as a fraction. Left: ``C`` (log scale); right: accuracy in %. ``reference``
    (e.g. the paper's readings) gives ``head_layers``, ``compression`` and ``accuracy`` (a fraction) lists, drawn as
    open markers joined by a dotted line and named by ``reference["label"]``.
    """
    h = np.asarray(head_layers, dtype=float)
    if h.ndim != 1 or h.size == 0:
        raise ValueError("head_layers must be a non-empty 1-d sequence")
    comp = _series("compression", compression, h.size)
    acc = _series("accuracy", accuracy, h.size)
    if not comp or not acc:
        raise ValueError("compression and accuracy need at least one series each")
    fig = Figure(figsize=(9.0, 4.4), layout="constrained")
    ax_c, ax_a = fig.subplots(1, 2)
    for ax, series, scale, log in ((ax_c, comp, 1.0, True), (ax_a, acc, 100.0, False)):
        for i, (label, a) in enumerate(series.items()):
            mean, std = scale * a.mean(axis=0), scale * a.std(axis=0)
            low = np.maximum(mean - std, mean / 10) if log else mean - std
            ax.fill_between(h, low, mean + std, color=COLORS[i % len(COLORS)], alpha=0.25, lw=0)
            ax.plot(h, mean, "o-", color=COLORS[i % len(COLORS)], label=f"{label} ({a.shape[0]} seeds)")
        if reference is not None:
            key = "compression" if log else "accuracy"
            ax.plot(np.asarray(reference["head_layers"], dtype=float), scale * np.asarray(reference[key], dtype=float),
                    "o:", mfc="white", color="0.3", label=str(reference.get("label", "reference")))
        if log:
            ax.set_yscale("log")
        ax.set_xticks(h)
        ax.set_xlabel("projection-head layers $h$")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    ax_c.set_ylabel(r"$C$ of the kept features")
    ax_a.set_ylabel("held-out probe accuracy (%)")
    summary = [f"{label}: mean C goes from {a.mean(axis=0)[0]:.3g} at h = {h[0]:g} to {a.mean(axis=0)[-1]:.3g} at "
               f"h = {h[-1]:g}" for label, a in comp.items()]
    summary += [f"{label}: mean accuracy from {100 * a.mean(axis=0)[0]:.1f} % to {100 * a.mean(axis=0)[-1]:.1f} %"
                for label, a in acc.items()]
    return describe(fig, "Over the number h of projection-head layers, " + "; ".join(summary))


def transfer_design_view(designs: Mapping[str, Mapping[str, Any]], design: str, head_layers: int) -> Figure:
    """Explorer frame comparing designs of the ``transfer`` experiment: :func:`transfer_network_view` of
    ``designs[design]`` (a mapping with ``heads`` and, for the cut design, the shared ``layers`` table), on axes that
    hold the tables of every design, so that they stay put when either control moves."""
    if design not in designs:
        raise ValueError(f"unknown design {design!r}; have {list(designs)}")
    entry = designs[design]
    fig = transfer_network_view(entry["heads"], head_layers, entry.get("layers"))
    tables = [t for d in designs.values() for t in (r.get("layers", d.get("layers")) for r in d["heads"])
              if t is not None]
    ax = fig.axes[0]
    ax.set_xlim(-0.3, max(float(np.nanmax(column(t, "layer"))) for t in tables) + 0.3)
    limits = _metric_limits(tables, "compression")
    ax.set_ylim(*limits)
    _plain_log_axis(ax.yaxis, limits)
    ax.set_title(f"{design}\n{ax.get_title()}")
    ax.legend(loc="lower left")
    return fig


def _check_history(history: Sequence[Mapping[str, Any]], name: str = "history") -> None:
    keys = ("epoch", "loss", "compression")
    if not isinstance(history, Sequence) or len(history) == 0:
        raise ValueError(f"{name} must be a non-empty list of records (run the experiment with record_every > 0)")
    if not all(isinstance(h, Mapping) and all(k in h for k in keys) for h in history):
        raise ValueError(f"every record of {name} must have {keys}")


def history_fits(history: Sequence[Mapping[str, Any]], fit_layers: Sequence[int]) -> dict[str, np.ndarray]:
    """Along training: ``epoch``, ``loss``, ``accuracy`` and the geometric fit (``ratio``, ``r2``) of ``C_l`` over
    ``fit_layers`` at every record of a training ``history`` (``pnc.train.TrainResult.history``)."""
    from pnc.fits import fit_geometric_rate

    _check_history(history)
    idx = [int(j) for j in fit_layers]
    if len(idx) < 3:
        raise ValueError(f"fit_layers must name at least 3 layers, got {list(fit_layers)}")
    fits = [fit_geometric_rate(np.asarray(h["compression"], float)[idx], np.asarray(idx, float)) for h in history]
    return {
        "epoch": np.array([int(h["epoch"]) for h in history]),
        "loss": np.array([float(h["loss"]) for h in history]),
        "accuracy": np.array([float(h.get("accuracy", np.nan)) for h in history]),
        "ratio": np.array([f[0] for f in fits]),
        "r2": np.array([f[1] for f in fits]),
    }


def training_curves_figure(
    losses: Mapping[str, Sequence[Sequence[float]]],
    loss_threshold: float | None = None,
) -> Figure:
    """Training loss per epoch (log axis), one colour per network in ``losses`` (``{label: [loss curve per seed]}``),
    one line per seed; ``loss_threshold`` draws the loss the fit criterion asks for."""
    if not losses:
        raise ValueError("losses must map at least one label to a list of loss curves")
    fig = Figure(figsize=(6.4, 3.2), layout="constrained")
    ax = fig.subplots()
    for i, (label, curves) in enumerate(losses.items()):
        if not curves:
            raise ValueError(f"losses[{label!r}] holds no loss curve")
        for j, curve in enumerate(curves):
            v = np.asarray(curve, float)
            ax.semilogy(np.arange(1, v.size + 1), v, "-", color=COLORS[i % len(COLORS)], lw=1.2, alpha=0.85,
                        label=f"{label} ({len(curves)} seed{'s' if len(curves) > 1 else ''})" if j == 0 else None)
    if loss_threshold is not None:
        ax.axhline(loss_threshold, color="0.3", ls=":", lw=1.2, label=f"fit criterion: loss < {loss_threshold:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    finals = {label: max(float(np.asarray(c, float)[-1]) for c in curves) for label, curves in losses.items()}
    # a network "trains" when every seed's final loss is below half its first: the summary says which do not
    stuck = [label for label, curves in losses.items()
             if any(np.asarray(c, float)[-1] > 0.5 * np.asarray(c, float)[0] for c in curves)]
    trend = ("The training loss of every seed falls over training" if not stuck else
             "The training loss stays near its start for the " + " and the ".join(stuck)
             + ("" if len(stuck) == len(losses) else " and falls for the others"))
    return describe(fig, trend + "; the largest final loss is "
                    + ", ".join(f"{v:.3g} for the {label}" for label, v in finals.items())
                    + ("" if loss_threshold is None else f" (criterion: below {loss_threshold:g})"))


def emergence_figure(
    histories: Sequence[Sequence[Mapping[str, Any]]],
    fit_layers: Sequence[int],
    epochs: Sequence[int],
    ratio_band: tuple[float, float] | None = None,
    paper_ratio: float | None = None,
) -> Figure:
    """How the geometric law emerges along training, from the ``record_every`` histories of several seeds.

    Left: ``C_l`` per layer at the chosen ``epochs`` (first history), the layers of the fit shaded. Middle: the
    fitted per-layer ratio over ``fit_layers`` against the epoch, one line per seed (``ratio_band`` shaded,
    ``paper_ratio`` dotted). Right: the fit's R² against the epoch.
    """
    if not histories:
        raise ValueError("histories must hold at least one training history")
    first = histories[0]
    _check_history(first, "histories[0]")
    by_epoch = {int(h["epoch"]): h for h in first}
    missing = [e for e in epochs if int(e) not in by_epoch]
    if missing:
        raise ValueError(f"epochs {missing} were not recorded; recorded: {sorted(by_epoch)}")
    fig = Figure(figsize=(11.0, 3.4), layout="constrained")
    ax_c, ax_r, ax_q = fig.subplots(1, 3)
    part = [int(j) for j in fit_layers]
    ax_c.axvspan(part[0] - 0.25, part[-1] + 0.25, color="0.9", zorder=0, lw=0)
    for i, e in enumerate(epochs):
        c = np.asarray(by_epoch[int(e)]["compression"], float)
        ax_c.semilogy(np.arange(c.size), c, "o-", color=COLORS[i % len(COLORS)], label=f"epoch {int(e)}")
    ax_c.set_xlabel("layer $l$")
    ax_c.set_ylabel(_LABELS["compression"])
    ax_c.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_c.legend(fontsize=8)
    if ratio_band is not None:
        ax_r.axhspan(*ratio_band, color="0.9", zorder=0, lw=0, label=f"{ratio_band[0]:g} to {ratio_band[1]:g}")
    if paper_ratio is not None:
        ax_r.axhline(paper_ratio, color="0.3", ls=":", lw=1.2, label=f"paper ≈ {paper_ratio:g}")
    for j, history in enumerate(histories):
        fits = history_fits(history, part)
        keep = fits["epoch"] > 0  # at initialisation the fit is of no interest (all layers equal)
        ax_r.plot(fits["epoch"][keep], fits["ratio"][keep], "-", color=COLORS[j % len(COLORS)], label=f"seed {j}")
        ax_q.plot(fits["epoch"][keep], fits["r2"][keep], "-", color=COLORS[j % len(COLORS)], label=f"seed {j}")
    ax_q.axhline(0.9, color="0.3", ls=":", lw=1.2, label="$R^2$ = 0.9")
    ax_r.set_xlabel("epoch")
    ax_r.set_ylabel(r"fitted ratio $C_{l+1}/C_l$")
    ax_r.set_ylim(0, 1.05)
    ax_r.legend(fontsize=8)
    ax_q.set_xlabel("epoch")
    ax_q.set_ylabel("$R^2$ of the fit")
    ax_q.set_ylim(0, 1.02)
    ax_q.legend(fontsize=8, loc="lower right")
    ends = [history_fits(h, part) for h in histories]
    return describe(fig, f"Along training the fitted ratio of C_l over layers {part[0]} to {part[-1]} ends at "
                    + ", ".join(f"{e['ratio'][-1]:.2f}" for e in ends) + " and its R^2 at "
                    + ", ".join(f"{e['r2'][-1]:.3f}" for e in ends) + f" for the {len(ends)} seeds")


def epoch_view(history: Sequence[Mapping[str, Any]], fit_layers: Sequence[int], epoch: int) -> Figure:
    """Explorer frame: ``C_l`` per layer at one recorded ``epoch`` of a training history, with the geometric fit over
    ``fit_layers`` and the loss, training accuracy, ratio and R² in the title; the final curve in grey. The axes
    hold every recorded epoch."""
    from pnc.fits import fit_geometric_rate

    _check_history(history)
    by_epoch = {int(h["epoch"]): h for h in history}
    if int(epoch) not in by_epoch:
        raise ValueError(f"epoch {epoch} was not recorded; recorded: {sorted(by_epoch)}")
    part = [int(j) for j in fit_layers]
    allc = np.concatenate([np.asarray(h["compression"], float) for h in history])
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.subplots()
    ax.axvspan(part[0] - 0.25, part[-1] + 0.25, color="0.9", zorder=0, lw=0)
    last = np.asarray(history[-1]["compression"], float)
    ax.semilogy(np.arange(last.size), last, "o-", color="0.7", label=f"epoch {int(history[-1]['epoch'])}")
    h = by_epoch[int(epoch)]
    c = np.asarray(h["compression"], float)
    ax.semilogy(np.arange(c.size), c, "o-", color=COLORS[0], label=f"epoch {int(epoch)}")
    ratio, r2 = fit_geometric_rate(c[part], np.asarray(part, float))
    slope, icpt, _ = fit_linear(np.log10(c[part]), np.asarray(part, float))
    xs = np.asarray(part, float)
    ax.semilogy(xs, 10 ** (slope * xs + icpt), ":", color="0.2", label=f"fit: ratio {ratio:.2f}, $R^2$ {r2:.2f}")
    ax.set_ylim(allc.min() / 1.5, allc.max() * 1.5)
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(_LABELS["compression"])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    acc = h.get("accuracy")
    ax.set_title(f"epoch {int(epoch)}: loss {float(h['loss']):.2g}"
                 + ("" if acc is None else f", training accuracy {100 * float(acc):.1f} %"))
    ax.legend(loc="lower left")
    return fig
