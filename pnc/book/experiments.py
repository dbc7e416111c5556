"""Named real-data experiments (chapters 1, 6 and 7), each at two scales.

Every :class:`Experiment` has a ``book`` configuration (offline data, small networks, seconds on a laptop
CPU) and a ``paper`` configuration (the authors' CIFAR-10 settings as their code and paper give them; hours on a GPU).
``experiment.run(config, ctx)`` trains, measures and returns a JSON-friendly dict with

- ``layers``: one dict per layer ``l = 0..L-1`` (``0`` is the input) with ``layer``, ``kind``
  (``"input"``, ``"nonlinear"`` or ``"linear"``), ``compression``, ``discrimination``, ``nc1``,
  ``nc1_rank``, ``numerical_rank`` (95 % of the nuclear norm), ``note``, and where probes ran ``probe_accuracy``
  (training accuracy of a linear probe, the quantity the authors report) and ``probe_test_accuracy``: the rows of
  :func:`layer_table`'s :class:`pnc.LayerReport` (``pnc.LayerReport.from_dict(result["layers"])`` reads them back);
- for ``hybrid`` and ``mlp``: ``test_layers``, the same table measured on the test split
  (:func:`split_table`: ``pnc.measure`` of the trained network, no probes);
- ``summary``: the headline numbers (loss, fitted geometric rate and its R², ...);
- for ``transfer``: ``transfer_accuracy``, indexed by the number of projection-head layers ``1, 2, ...``;
- optionally ``arrays``: ``{name: numpy array}``.

``ctx`` is a :class:`pnc.book.runner.RunContext` (seed, device, progress bars, checkpoints); ``None`` runs on the
CPU with seed 0 and no progress bar. The CLI (``python -m pnc.book run NAME``) and
:func:`pnc.book.runner.load_or_run` are the usual entry points.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pnc._checks import check_int, check_seed
from pnc.features import eval_mode
from pnc.report import LayerReport, measure

if TYPE_CHECKING:  # pragma: no cover
    from pnc.book.context import RunContext

__all__ = ["EXPERIMENTS", "FIT_ACCURACY", "FIT_LOSS", "Experiment", "check_split", "class_mean_projection",
           "fits_training_data", "get_experiment", "layer_table", "split_table"]


@dataclass(frozen=True)
class Experiment:
    """A named experiment: its two configurations and the function that runs one of them."""

    name: str
    description: str
    book: dict
    paper: dict
    run: Callable[[dict, RunContext], dict]

    def config(self, scale: str = "book") -> dict:
        """A copy of the ``"book"`` or ``"paper"`` configuration."""
        if scale not in ("book", "paper"):
            raise ValueError(f"scale must be 'book' or 'paper', got {scale!r}")
        return dict(self.book if scale == "book" else self.paper)


# ---------------------------------------------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------------------------------------------

_TRAIN_KEYS = ("optimizer", "lr", "momentum", "weight_decay", "epochs", "batch_size", "alpha", "final_lr_factor",
               "record_every")


@contextmanager
def _cpu_threads(config: dict, device: torch.device) -> Iterator[None]:
    """Run with ``config["cpu_threads"]`` torch threads on the CPU, restoring the setting afterwards.

    The book-scale networks are so small that several threads only fight over the cores (on a busy 2-core
    machine one thread is several times faster than two); ``None`` leaves torch's setting alone.
    """
    n = config.get("cpu_threads")
    if n is None or torch.device(device).type != "cpu":
        yield
        return
    n = check_int("cpu_threads", n, 1)
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _context(ctx: Any) -> Any:
    if ctx is None:
        from pnc.book.context import RunContext

        return RunContext()
    for attr in ("seed", "device", "progress_bar", "checkpoint_path"):
        if not hasattr(ctx, attr):
            raise ValueError(f"ctx must be a RunContext (missing {attr!r}), got {type(ctx).__name__}")
    return ctx


def _require(config: dict, keys: Iterable[str], name: str) -> None:
    if not isinstance(config, dict):
        raise ValueError(f"{name} config must be a dict, got {type(config).__name__}")
    missing = [k for k in keys if k not in config]
    if missing:
        raise ValueError(f"{name} config is missing {missing}")


def _load(config: dict, split: str, classes: list[int] | None = None, n_per_class: int | None = None):
    from pnc.data import load_dataset

    X, y = load_dataset(config["dataset"], split, root=config.get("data_root"), seed=int(config.get("data_seed", 0)))
    if classes is not None:
        keep = torch.isin(y, torch.tensor(classes))
        X, y = X[keep], y[keep]
        remap = torch.full((int(y.max()) + 1,), -1, dtype=torch.int64)
        remap[torch.tensor(classes)] = torch.arange(len(classes))
        y = remap[y]
    if n_per_class is not None:
        from pnc.data import subsample_per_class

        X, y = subsample_per_class(X, y, int(n_per_class), seed=int(config.get("data_seed", 0)))
    return X, y


def _data_source(config: dict) -> str:
    """Which copy of the data set the run read (the data folder, the Debian package, a download), in words."""
    from pnc import download

    name = config.get("dataset")
    if name not in download.DATASET_FILES:
        return f"{name} (bundled with its Python package)"
    return download.locate(name, config.get("data_root"), download=False).describe()


def _model(config: dict, in_dim: int, n_classes: int, seed: int, n_linear: int | None = None) -> torch.nn.Module:
    from pnc import models

    net = config.get("network", "hybrid")
    common = dict(init=config.get("init", "orthogonal"), xi=float(config.get("xi", 0.1)), seed=seed)
    if net == "hybrid":
        return models.HybridNetwork(
            in_dim, int(config["width"]), n_classes, n_nonlinear=int(config["n_nonlinear"]),
            n_linear=int(config["n_linear"] if n_linear is None else n_linear), **common,
        )
    if net == "mlp":
        return models.MLP(in_dim, int(config["width"]), n_classes, depth=int(config["depth"]), **common)
    raise ValueError(f"config 'network' must be 'hybrid' or 'mlp', got {net!r}")


def _train(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, config: dict, ctx: Any, seed: int, tag: str):
    from pnc import train as T

    options = {k: config[k] for k in _TRAIN_KEYS if k in config}
    cfg = T.TrainConfig(loss="mse", seed=seed, **options)
    bar: Iterator[Any] = iter(ctx.progress_bar(range(cfg.epochs), total=cfg.epochs, desc=tag))

    def tick(epoch: int, loss: float) -> None:
        next(bar, None)

    result = T.train(model, X, y, cfg, checkpoint_path=ctx.checkpoint_path(tag), callback=tick)
    for _ in bar:  # finish (and close) the bar when training stopped early or resumed
        pass
    return result


def _check_finite(result: Any, config: dict) -> None:
    if not math.isfinite(result.final_loss):
        raise ValueError(f"training diverged (loss {result.final_loss}) with lr={config['lr']}; lower the lr")


def _features(model: torch.nn.Module, X: torch.Tensor, device: torch.device, batch: int = 2048) -> list[np.ndarray]:
    """``[z^0, ..., z^{L-1}]`` in eval mode, as float32 numpy arrays on the CPU; every submodule keeps its own mode
    afterwards (:func:`pnc.features.eval_mode`)."""
    dtype = next(model.parameters()).dtype
    chunks: list[list[np.ndarray]] = []
    with eval_mode(model):
        for i in range(0, X.shape[0], batch):
            feats = model.forward_features(X[i : i + batch].to(device=device, dtype=dtype))
            chunks.append([f.float().cpu().numpy() for f in feats])
    return [np.concatenate([c[j] for c in chunks]) for j in range(len(chunks[0]))]


def _accuracy(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, device: torch.device,
              batch: int = 2048) -> float:
    """Accuracy of the network's own prediction (eval mode) on ``(X, y)``; every submodule keeps its own mode
    afterwards (:func:`pnc.features.eval_mode`)."""
    dtype = next(model.parameters()).dtype
    with eval_mode(model):
        hits = sum(int((model(X[i : i + batch].to(device=device, dtype=dtype)).argmax(1).cpu()
                        == y[i : i + batch]).sum()) for i in range(0, X.shape[0], batch))
    return hits / X.shape[0]


FIT_LOSS = 1e-2
"""The loss below which the fit criterion (:func:`fits_training_data`) counts a run as trained to fit: 1 % of the
loss of a network whose output is zero (the squared error against a one-hot target is 1 per image)."""


FIT_ACCURACY = 0.999
"""The training accuracy the fit criterion asks for: all but one image in a thousand (in eval mode, where batch
normalisation uses its running statistics, an MLP that fits may still miss a handful of its 6,000 images)."""


def fits_training_data(final_loss: float, train_accuracy: float, loss_below: float = FIT_LOSS,
                       accuracy_from: float = FIT_ACCURACY) -> bool:
    """The book's criterion for a network trained to fit its data: a training accuracy of at least ``accuracy_from``
    and a final training loss below ``loss_below``."""
    return bool(train_accuracy >= accuracy_from and final_loss < loss_below)


def _kinds(model: torch.nn.Module) -> list[str]:
    kinds = ["input"]
    for block in model.features:
        kinds.append("linear" if isinstance(block, torch.nn.Linear) else "nonlinear")
    return kinds


def _float(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _safe(metric: Callable[..., float], f: np.ndarray, y: np.ndarray) -> float | None:
    """A metric's value, or ``None`` where it is undefined (e.g. a class mean of dead ReLUs is zero)."""
    try:
        return _float(metric(f, y))
    except ValueError:
        return None


LAYER_METRICS = ("compression", "discrimination", "nc1", "rank")
"""What every experiment measures per layer (columns ``compression, discrimination, nc1, nc1_rank,
numerical_rank`` of a :class:`pnc.LayerReport`)."""


def check_split(data: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)`` as tensors, checked: ``X`` is ``(N, ...)`` (one input per row), ``y`` holds ``N`` integer labels of
    at least 2 classes."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"{name} must be a pair (X, y), got {type(data).__name__}")
    X, y = (torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v for v in data)
    if X.ndim < 2 or X.shape[0] == 0:
        raise ValueError(f"{name}: X must be a non-empty array of N inputs (N, ...), got shape {tuple(X.shape)}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"{name}: y must be 1-d with {X.shape[0]} labels, got shape {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"{name}: y must hold integer class labels, got {y.dtype}")
    if torch.unique(y).numel() < 2:
        raise ValueError(f"{name}: the labels hold a single class; collapse metrics compare classes")
    return X, y.to(torch.int64)


def split_table(
    model: torch.nn.Module,
    X: Any,
    y: Any,
    metrics: Sequence[str] = LAYER_METRICS,
    kinds: Sequence[str] | None = None,
    device: Any = None,
    batch_size: int = 2048,
) -> LayerReport:
    """:func:`pnc.measure` of ``model`` on one split ``(X, y)`` (in eval mode), with a ``kind`` column if given.

    ``metrics`` defaults to those of every experiment's training table (:data:`LAYER_METRICS`),
    without the probes (a probe is fitted on the training split only).

    ``kinds`` names every row (``"input"``, ``"nonlinear"``, ``"linear"``), as the experiments' tables do.
    """
    X, y = check_split((X, y), "the split")
    dtype = next(model.parameters()).dtype
    table = measure(model, (X.to(dtype), y), metrics=tuple(metrics), batch_size=batch_size, device=device)
    if kinds is not None:
        if len(kinds) != len(table):
            raise ValueError(f"kinds has {len(kinds)} entries for {len(table)} measured layers")
        table = table.with_columns(kind=list(kinds))
    return table


def layer_table(
    train_features: list[np.ndarray],
    y_train: Any,
    test_features: list[np.ndarray] | None = None,
    y_test: Any = None,
    kinds: list[str] | None = None,
    probe: bool = True,
    ridge: float = 1e-4,
) -> Any:
    """The :class:`pnc.LayerReport` of training features (:func:`pnc.report_from_features` with
    :data:`LAYER_METRICS`) plus a ``kind`` column and, with ``probe``, a ridge probe's training accuracy
    (``probe_accuracy``) and its accuracy on the test features (``probe_test_accuracy``, when given).

    A metric undefined at a layer (e.g. a class mean of dead ReLUs is zero) is NaN there, its reason in ``note``.
    Results store the table as ``table.to_dict()["rows"]``; :meth:`pnc.LayerReport.from_dict` reads it back.
    """
    import warnings

    from pnc.probes import fit_probe
    from pnc.report import report_from_features

    if test_features is not None and len(test_features) != len(train_features):
        raise ValueError("train_features and test_features must list the same layers")
    y_train = np.asarray(y_train)
    with warnings.catch_warnings():  # the note column keeps the reason of every NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        table = report_from_features(train_features, y_train, LAYER_METRICS)
    n = len(train_features)
    columns: dict[str, list[Any]] = {"kind": [kinds[i] if kinds else ("input" if i == 0 else "hidden")
                                              for i in range(n)]}
    if probe:
        probes = [fit_probe(f, y_train, ridge=ridge) for f in train_features]
        columns["probe_accuracy"] = [p.accuracy(f, y_train) for p, f in zip(probes, train_features, strict=True)]
        if test_features is not None:
            columns["probe_test_accuracy"] = [p.accuracy(f, np.asarray(y_test))
                                              for p, f in zip(probes, test_features, strict=True)]
    return table.with_columns(**columns)


def _rows(table: Any) -> list[dict[str, Any]]:
    """A layer table in a result's JSON form (NaN as ``None``)."""
    return table.to_dict()["rows"]


def _rank(features: np.ndarray, labels: np.ndarray) -> int:
    """Numerical rank of one layer's features, as :func:`layer_table` computes it (from the streamed Gram)."""
    from pnc.metrics import ClassStats, numerical_rank

    return int(numerical_rank(ClassStats(track_covariance=True).update(features, labels)))


def class_mean_projection(features: Any, labels: Any) -> np.ndarray:
    """Coordinates (N×2) of the samples in the top two principal directions of their centred class means.

    These directions carry the between-class variation; plotted, they show how tightly each class clusters
    around its mean relative to the spread of the means. The means are centred on the sample mean, as
    :meth:`pnc.ClassStats.sigma_b` centres them by default.
    """
    from pnc._checks import as_features, as_labels, check_classes
    from pnc.metrics import ClassStats

    f = as_features(features)
    y = as_labels(labels, f.shape[0])
    check_classes(y)
    st = ClassStats(track_covariance=False).update(f, y)
    centre = st.centre()
    _, _, vt = np.linalg.svd(st.centred_means(), full_matrices=False)
    basis = vt[:2].T
    if basis.shape[1] < 2:
        basis = np.concatenate([basis, np.zeros((f.shape[1], 2 - basis.shape[1]))], axis=1)
    return (f - centre) @ basis


def _geometric_fit(values: list[float]) -> dict[str, float | None]:
    from pnc.fits import fit_geometric_rate

    v = np.asarray(values, dtype=np.float64)
    if v.size < 3 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        return {"ratio": None, "r2": None}
    ratio, r2 = fit_geometric_rate(v)
    return {"ratio": float(ratio), "r2": float(r2)}


def _seed(ctx: Any) -> int:
    return check_seed(ctx.seed, "ctx.seed")


# ---------------------------------------------------------------------------------------------------------------
# hybrid / MLP: per-layer metrics and probes
# ---------------------------------------------------------------------------------------------------------------


def _run_layerwise(config: dict, ctx: Any) -> dict:
    """Train one hybrid or MLP network and measure every layer on the training and the test split (the ``hybrid``
    and ``mlp`` experiments)."""
    _require(config, ("dataset", "network", "width", *(_TRAIN_KEYS[:5])), "layerwise")
    ctx = _context(ctx)
    seed = _seed(ctx)
    start = time.perf_counter()
    Xtr, ytr = _load(config, "train", n_per_class=config.get("n_per_class"))
    Xte, yte = _load(config, "test", n_per_class=config.get("n_test_per_class"))
    n_classes = int(ytr.max()) + 1
    model = _model(config, Xtr.shape[1], n_classes, seed).to(ctx.device)
    result = _train(model, Xtr, ytr, config, ctx, seed, tag=config["network"])
    _check_finite(result, config)
    ftr = _features(model, Xtr, ctx.device)
    fte = _features(model, Xte, ctx.device)
    kinds = _kinds(model)
    rows = _rows(layer_table(ftr, ytr.numpy(), fte, yte.numpy(), kinds, probe=config.get("probe", True),
                             ridge=float(config.get("probe_ridge", 1e-4))))
    # the held-out table: the same metrics on the test split, measured as a user would (pnc.measure)
    test_rows = _rows(split_table(model, Xte, yte, LAYER_METRICS, kinds=kinds, device=ctx.device))
    lin = [r["layer"] for r in rows if r["kind"] == "linear"]
    # the linear part starts at the last nonlinear feature (its input) and runs to z^{L-1}
    first = lin[0] - 1 if lin else None
    fit_layers = list(range(first, len(rows))) if first is not None else []
    fit = _geometric_fit([rows[i]["compression"] for i in fit_layers]) if fit_layers else {"ratio": None, "r2": None}
    summary = {
        "final_loss": float(result.final_loss),
        "epochs_run": int(result.epochs_run),
        "train_accuracy": _accuracy(model, Xtr, ytr, ctx.device),
        "test_accuracy": _accuracy(model, Xte, yte, ctx.device),
        "fit_layers": fit_layers,
        "linear_ratio": fit["ratio"],
        "linear_r2": fit["r2"],
        "n_train": int(Xtr.shape[0]),
        "n_test": int(Xte.shape[0]),
        "train_seconds": float(result.wall_time),
        "seconds": time.perf_counter() - start,
    }
    arrays = {"losses": np.asarray(result.losses), "labels": ytr.numpy(),
              "projection": np.stack([class_mean_projection(f, ytr.numpy()) for f in ftr]).astype(np.float32)}
    doc = {"layers": rows, "test_layers": test_rows, "summary": summary, "arrays": arrays}
    if result.history:  # config "record_every": C_l, D_l, loss and training accuracy along training
        doc["history"] = result.history
    return doc


# ---------------------------------------------------------------------------------------------------------------
# default initialisation at several depths
# ---------------------------------------------------------------------------------------------------------------


def _run_depths(config: dict, ctx: Any) -> dict:
    """Train networks (``network``: ``"hybrid"`` with ``n_nonlinear`` blocks, or ``"mlp"``) of several depths and
    measure ``C_l``, ``D_l`` per layer; ``ratio``/``r2`` fit ``log C_l`` over the hidden layers ``1..L-1``.

    ``layers`` is the table of the deepest network; ``depths`` holds every depth's table and fit.
    """
    _require(config, ("dataset", "width", "depths", *(_TRAIN_KEYS[:5])), "depths")
    ctx = _context(ctx)
    seed = _seed(ctx)
    start = time.perf_counter()
    Xtr, ytr = _load(config, "train", n_per_class=config.get("n_per_class"))
    n_classes = int(ytr.max()) + 1
    out = []
    for depth in config["depths"]:
        net = config.get("network", "mlp")
        cfg = {**config, "network": net, "depth": int(depth)}
        if net == "hybrid":
            nb = int(config["n_nonlinear"])
            if int(depth) < nb + 2:
                raise ValueError(f"depth {depth} leaves no linear layer after {nb} nonlinear blocks")
            cfg["n_linear"] = int(depth) - 1 - nb
        model = _model(cfg, Xtr.shape[1], n_classes, seed).to(ctx.device)
        result = _train(model, Xtr, ytr, cfg, ctx, seed, tag=f"{net}-L{depth}")
        _check_finite(result, cfg)
        rows = _rows(layer_table(_features(model, Xtr, ctx.device), ytr.numpy(), kinds=_kinds(model), probe=False))
        fit = _geometric_fit([r["compression"] for r in rows[1:]])
        out.append({"depth": int(depth), "layers": rows, "final_loss": float(result.final_loss),
                    "train_accuracy": _accuracy(model, Xtr, ytr, ctx.device), "losses": _losses(result),
                    "ratio": fit["ratio"], "r2": fit["r2"]})
    return {"layers": out[-1]["layers"], "depths": out,
            "summary": {"seconds": time.perf_counter() - start, "depths": [int(d) for d in config["depths"]]}}


# ---------------------------------------------------------------------------------------------------------------
# transfer with projection heads
# ---------------------------------------------------------------------------------------------------------------


def _transfer_row(h: int, fp: np.ndarray, yp: np.ndarray, z_tr: np.ndarray, y_tr: np.ndarray, z_te: np.ndarray,
                  y_te: np.ndarray, ridge: float, ridges: Iterable[float] = ()) -> dict[str, Any]:
    from pnc.metrics import compression
    from pnc.probes import fit_probe

    probe = fit_probe(z_tr, y_tr, ridge=ridge)
    by_ridge = {f"{r:g}": fit_probe(z_tr, y_tr, ridge=float(r)).accuracy(z_te, y_te) for r in ridges}
    return {
        "transfer_accuracy_by_ridge": by_ridge,
        "head_layers": int(h),
        "compression": _safe(compression, fp, yp),
        "transfer_compression": _safe(compression, z_tr, y_tr),
        "transfer_accuracy": probe.accuracy(z_te, y_te),
        "probe_train_accuracy": probe.accuracy(z_tr, y_tr),
        "numerical_rank": _rank(fp, yp),
    }


def _losses(result: Any) -> list[float]:
    """The training loss of every epoch (the mean over its minibatches) of a run's :class:`pnc.train.TrainResult`."""
    return [float(loss) for loss in result.losses]


def _run_transfer(config: dict, ctx: Any) -> dict:
    """Pretrain with 1..H projection-head layers, then probe the pre-head features on held-out classes.

    The network is trained on the ``pretrain_classes``; a projection head of ``h`` layers is discarded after
    pretraining and the features below it are kept. Two ways to vary ``h`` (``config["mode"]``):

    - ``"cut"`` (default): one network of depth ``L`` (``n_nonlinear`` MLP blocks, ``n_linear`` linear layers, a
      classifier); its top ``h`` layers are the head, so the kept features are ``z^{L-h}``.
    - ``"grow"``: for each ``h`` a new network of ``n_nonlinear`` MLP blocks (the extractor) and a head of ``h - 1``
      linear layers plus the classifier, each pretrained from scratch; the kept features are ``z^{n_nonlinear}``.

    Reported per ``h``: ``compression`` (``C`` of the kept features on the pretraining data) and
    ``transfer_accuracy``, the test accuracy of a ridge probe fitted on the kept features of the
    ``transfer_classes`` (training split) and evaluated on their test split; with ``probe_ridges`` also
    ``transfer_accuracy_by_ridge``, the same accuracy for each of those ridge strengths; ``final_loss``,
    ``train_accuracy`` and ``losses`` (the loss of every epoch) of the network the row's features come from.
    """
    _require(config, ("dataset", "width", "head_layers", "pretrain_classes", "transfer_classes",
                      *(_TRAIN_KEYS[:5])), "transfer")
    ctx = _context(ctx)
    seed = _seed(ctx)
    mode = config.get("mode", "cut")
    if mode not in ("cut", "grow"):
        raise ValueError(f"transfer mode must be 'cut' or 'grow', got {mode!r}")
    pre, post = list(config["pretrain_classes"]), list(config["transfer_classes"])
    if set(pre) & set(post):
        raise ValueError(f"pretrain_classes and transfer_classes overlap: {sorted(set(pre) & set(post))}")
    heads = [int(h) for h in config["head_layers"]]
    if not heads or min(heads) < 1:
        raise ValueError(f"head_layers must be a non-empty list of integers >= 1, got {config['head_layers']}")
    nb = int(config.get("n_nonlinear", 0))
    cfg = {**config, "network": config.get("network", "hybrid") if mode == "cut" else "hybrid"}
    start = time.perf_counter()
    Xp, yp = _load(config, "train", pre, config.get("n_per_class"))
    Xt_tr, yt_tr = _load(config, "train", post, config.get("n_transfer_per_class"))
    Xt_te, yt_te = _load(config, "test", post)
    ridge = float(config.get("probe_ridge", 1e-4))
    ridges = [float(r) for r in config.get("probe_ridges", ())]
    rows_by_head: list[dict[str, Any]] = []
    last_rows: list[dict[str, Any]] = []
    if mode == "cut":
        model = _model(cfg, Xp.shape[1], len(pre), seed).to(ctx.device)
        if max(heads) > len(model.features):
            raise ValueError(f"head_layers up to {max(heads)} need at least {max(heads)} feature layers; the "
                             f"network has {len(model.features)}")
        result = _train(model, Xp, yp, cfg, ctx, seed, tag="transfer")
        _check_finite(result, cfg)
        fp, ftr, fte = (_features(model, X, ctx.device) for X in (Xp, Xt_tr, Xt_te))
        last_rows = _rows(layer_table(fp, yp.numpy(), kinds=_kinds(model), probe=False))
        depth = len(fp)  # = L: features z^0 .. z^{L-1}
        for h in heads:
            row = _transfer_row(h, fp[depth - h], yp.numpy(), ftr[depth - h], yt_tr.numpy(), fte[depth - h],
                                yt_te.numpy(), ridge, ridges)
            row.update(layer=depth - h, final_loss=float(result.final_loss), losses=_losses(result),
                       train_accuracy=_accuracy(model, Xp, yp, ctx.device))
            rows_by_head.append(row)
    kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if mode == "cut":
        kept = {h: (ftr[len(fp) - h], fte[len(fp) - h]) for h in heads}
    else:
        for h in heads:
            model = _model(cfg, Xp.shape[1], len(pre), seed, n_linear=h - 1).to(ctx.device)
            result = _train(model, Xp, yp, cfg, ctx, seed, tag=f"transfer-h{h}")
            _check_finite(result, cfg)
            fp = _features(model, Xp, ctx.device)
            last_rows = _rows(layer_table(fp, yp.numpy(), kinds=_kinds(model), probe=False))
            kept[h] = (_features(model, Xt_tr, ctx.device)[nb], _features(model, Xt_te, ctx.device)[nb])
            row = _transfer_row(h, fp[nb], yp.numpy(), kept[h][0], yt_tr.numpy(), kept[h][1], yt_te.numpy(), ridge,
                                ridges)
            row.update(layer=nb, final_loss=float(result.final_loss), losses=_losses(result), layers=last_rows,
                       train_accuracy=_accuracy(model, Xp, yp, ctx.device))
            rows_by_head.append(row)
    arrays: dict[str, np.ndarray] = {}
    if config.get("store_features", False):
        arrays = {"transfer_train_labels": yt_tr.numpy(), "transfer_test_labels": yt_te.numpy()}
        for h in heads:
            arrays[f"transfer_train_h{h}"], arrays[f"transfer_test_h{h}"] = kept[h]
    return {
        "arrays": arrays,
        "layers": last_rows,
        "heads": rows_by_head,
        "transfer_accuracy": [r["transfer_accuracy"] for r in rows_by_head],
        "summary": {"head_layers": heads, "mode": mode, "seconds": time.perf_counter() - start,
                    "n_pretrain": int(Xp.shape[0]), "n_transfer_train": int(Xt_tr.shape[0]),
                    "n_transfer_test": int(Xt_te.shape[0])},
    }


def _threaded(impl: Callable[[dict, Any], dict], doc: str) -> Callable[[dict, RunContext | None], dict]:
    def run(config: dict, ctx: RunContext | None = None) -> dict:
        ctx = _context(ctx)
        with _cpu_threads(config if isinstance(config, dict) else {}, ctx.device):
            doc = impl(config, ctx)
        doc["data_source"] = _data_source(config)
        return doc

    run.__doc__ = doc
    run.__name__ = impl.__name__.lstrip("_")
    return run


run_layerwise = _threaded(_run_layerwise, _run_layerwise.__doc__ or "")
run_depths = _threaded(_run_depths, _run_depths.__doc__ or "")
run_transfer = _threaded(_run_transfer, _run_transfer.__doc__ or "")


# ---------------------------------------------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------------------------------------------

_PAPER_TRAIN = {"optimizer": "sgd", "lr": 1e-4, "momentum": 0.9, "weight_decay": 1e-4, "epochs": 400,
                "batch_size": 128, "final_lr_factor": 0.01}
"""The authors' CIFAR-10 training recipe (their published training script)."""

_BOOK_TRAIN = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "epochs": 200,
               "batch_size": 128, "final_lr_factor": 0.01, "cpu_threads": 1}
"""The authors' recipe (SGD with momentum 0.9, weight decay 1e-4, batch 128, one cosine cycle to lr/100) at CPU
scale: 200 epochs at lr 0.01 on 600 Fashion-MNIST images per class (6,000 of the 60,000), width 256; long enough
for the hybrid and the MLP to fit their training data (:func:`fits_training_data`) at every seed."""

_BOOK_DATA = {"dataset": "fashion_mnist", "n_per_class": 600, "width": 256}
"""Book scale: a seeded class-balanced tenth of Fashion-MNIST's training set; probes are tested on all 10,000 test
images."""

EXPERIMENTS: dict[str, Experiment] = {
    "hybrid": Experiment(
        name="hybrid",
        description="Nonlinear blocks then linear layers: per-layer C, D, NC1, numerical rank and linear probes.",
        book={**_BOOK_DATA, "network": "hybrid", "n_nonlinear": 3, "n_linear": 4, "init": "orthogonal", "xi": 0.1,
              "alpha": 100.0, **_BOOK_TRAIN, "record_every": 10},
        paper={"dataset": "cifar10", "network": "hybrid", "width": 1024, "n_nonlinear": 3, "n_linear": 4,
               "init": "orthogonal", "xi": 0.1, "alpha": 100.0, **_PAPER_TRAIN},
        run=run_layerwise,
    ),
    "wide_hybrid": Experiment(
        name="wide_hybrid",
        description="The book's hybrid at width 784 (the input's dimension), so that no layer's numerical rank is "
                    "capped by the width below the input's: per-layer rank, C and D (no probes).",
        book={**_BOOK_DATA, "network": "hybrid", "n_nonlinear": 3, "n_linear": 4, "init": "orthogonal", "xi": 0.1,
              "alpha": 100.0, **_BOOK_TRAIN, "width": 784, "n_per_class": 300, "epochs": 100, "probe": False,
              "n_test_per_class": 100},
        # half the images and half the epochs of the hybrid keep it to about 100 s on one core; it still fits
        paper={"dataset": "cifar10", "network": "hybrid", "width": 1024, "n_nonlinear": 3, "n_linear": 4,
               "init": "orthogonal", "xi": 0.1, "alpha": 100.0, **_PAPER_TRAIN},
        run=run_layerwise,
    ),
    "mlp": Experiment(
        name="mlp",
        description="An MLP (Linear-BatchNorm-ReLU blocks) of the same depth: per-layer metrics and probes.",
        book={**_BOOK_DATA, "network": "mlp", "depth": 8, "init": "orthogonal", "xi": 0.1, "alpha": 1.0,
              **_BOOK_TRAIN, "record_every": 10},
        paper={"dataset": "cifar10", "network": "mlp", "width": 1024, "depth": 8, "init": "orthogonal",
               "xi": 0.1, "alpha": 1.0, **_PAPER_TRAIN},
        run=run_layerwise,
    ),
    "depths": Experiment(
        name="depths",
        description="Hybrids (2 nonlinear blocks, then linear layers) with PyTorch's default initialisation at "
                    "depths L = 5, 7, 9: C_l and D_l per layer.",
        book={**_BOOK_DATA, "network": "hybrid", "n_nonlinear": 2, "depths": [5, 7, 9], "init": "default",
              "alpha": 1.0, **_BOOK_TRAIN, "lr": 0.1},  # at lr 0.01 the loss is still 0.015 after 200 epochs
        paper={"dataset": "fashion_mnist", "network": "hybrid", "n_nonlinear": 2, "width": 1024, "depths": [5, 7, 9],
               "init": "default", "alpha": 1.0, **_PAPER_TRAIN},
        run=run_depths,
    ),
    "transfer": Experiment(
        name="transfer",
        description="Pretrain with 1-5 projection-head layers; C of the pre-head features and linear-probe "
                    "accuracy on held-out classes.",
        book={**_BOOK_DATA, "n_nonlinear": 3, "n_linear": 4, "mode": "grow", "head_layers": [1, 2, 3, 4, 5],
              "pretrain_classes": [0, 1, 2, 3, 4], "transfer_classes": [5, 6, 7, 8, 9], "init": "default",
              "xi": 0.1, "alpha": 1.0, "probe_ridge": 1e-2, "probe_ridges": [1e-8, 1e-4, 1e-2, 1.0],
              "n_transfer_per_class": 600, **_BOOK_TRAIN, "n_per_class": 300, "lr": 0.02, "epochs": 100},
        # trained to fit at every head depth (chapter 8): with the authors' init (orthogonal, xi = 0.1) and alpha = 1
        # the deep heads never leave their initialisation, with alpha = 100 the h = 1 network diverges
        paper={"dataset": "cifar10", "width": 1024, "n_nonlinear": 3, "n_linear": 4, "mode": "grow",
               "head_layers": [1, 2, 3, 4, 5],
               "pretrain_classes": [0, 1, 2, 3, 4], "transfer_classes": [5, 6, 7, 8, 9], "init": "orthogonal",
               "xi": 0.1, "alpha": 100.0, "probe_ridge": 1e-2, **_PAPER_TRAIN},
        run=run_transfer,
    ),
}
"""The named experiments of the CLI (``python -m pnc.book list``)."""


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name`` (``ValueError`` listing the known names otherwise)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]
