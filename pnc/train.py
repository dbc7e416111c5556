"""Deterministic training loops: full-batch gradient descent or minibatch SGD, MSE or cross-entropy.

The MSE loss is the authors' ``(1/N) || alpha f(X) - Y ||_F^2``: the mean over samples of the sum
over classes of the squared error between ``alpha * output`` and the one-hot target. The learning
rate follows one cosine cycle from ``lr`` to ``lr * final_lr_factor`` over ``epochs`` epochs
(stepped once per epoch, as ``torch.optim.lr_scheduler.CosineAnnealingLR``), or stays constant.

Long runs can be checkpointed: with ``checkpoint_path`` set, :func:`train` saves the model, the optimizer, the
epoch, the results so far and every random state atomically every ``checkpoint_every`` epochs (and at the
end), and resumes from an existing checkpoint; a resumed run equals an uninterrupted one bit for bit on CPU.
Checkpoints are loaded with ``torch.load(weights_only=True)`` (no arbitrary unpickling).
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["CHECKPOINT_FORMAT", "TrainConfig", "TrainResult", "cosine_lr", "load_checkpoint", "train"]

CHECKPOINT_FORMAT = 1
"""Version of the checkpoint layout written by :func:`train`."""

_OPTIMIZERS = ("gd", "sgd")
_LOSSES = ("mse", "cross_entropy")
_SCHEDULES = ("cosine", "constant")


@dataclass
class TrainConfig:
    """Training options (validated on construction; a bad value raises ``ValueError`` naming it).

    Defaults are the authors' theory-verification recipe (chapter 4 of the book) except ``alpha``
    (1 here, 100 in that recipe) and ``loss_tol`` (off by default).
    """

    optimizer: str = "gd"
    """``"gd"`` (full batch, one step per epoch) or ``"sgd"`` (shuffled minibatches)."""
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    epochs: int = 5000
    batch_size: int = 128
    """Minibatch size for ``"sgd"`` (ignored by ``"gd"``)."""
    loss: str = "mse"
    """``"mse"`` (on ``alpha * output`` vs one-hot) or ``"cross_entropy"`` (on ``alpha * output``)."""
    alpha: float = 1.0
    """Output multiplier."""
    schedule: str = "cosine"
    final_lr_factor: float = 0.01
    """Cosine schedule ends at ``lr * final_lr_factor`` after ``epochs`` epochs."""
    loss_tol: float | None = None
    """Stop once the epoch's training loss is below this (``None``: never stop early)."""
    check_every: int = 10
    """Check ``loss_tol`` every this many epochs."""
    seed: int = 0
    """Seeds the minibatch shuffling (the model's init has its own seed)."""
    record_every: int = 0
    """If > 0, record per-layer compression and discrimination every this many epochs."""

    def __post_init__(self) -> None:
        def choice(name: str, allowed: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"TrainConfig.{name} must be one of {allowed}, got {value!r}")

        def number(name: str, minimum: float, strict: bool) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"TrainConfig.{name} must be a finite number, got {value!r}")
            if value < minimum or (strict and value == minimum):
                op = ">" if strict else ">="
                raise ValueError(f"TrainConfig.{name} must be {op} {minimum}, got {value!r}")

        def integer(name: str, minimum: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"TrainConfig.{name} must be an integer >= {minimum}, got {value!r}")

        choice("optimizer", _OPTIMIZERS)
        choice("loss", _LOSSES)
        choice("schedule", _SCHEDULES)
        number("lr", 0.0, strict=True)
        number("momentum", 0.0, strict=False)
        if self.momentum >= 1:
            raise ValueError(f"TrainConfig.momentum must be < 1, got {self.momentum!r}")
        number("weight_decay", 0.0, strict=False)
        number("alpha", 0.0, strict=True)
        number("final_lr_factor", 0.0, strict=False)
        integer("epochs", 1)
        integer("batch_size", 1)
        integer("check_every", 1)
        integer("seed", 0)
        integer("record_every", 0)
        if self.loss_tol is not None:
            number("loss_tol", 0.0, strict=True)

    @classmethod
    def from_dict(cls, options: Mapping[str, Any]) -> TrainConfig:
        """Build a config from a mapping, raising ``ValueError`` naming any unknown option."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig option(s) {unknown}; known options: {sorted(known)}")
        return cls(**options)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some options changed (validated; unknown names raise ``ValueError``)."""
        return TrainConfig.from_dict({**dataclasses.asdict(self), **changes})


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    losses: list[float]
    """Training loss of every epoch run (for ``"gd"``: the full-batch loss before that epoch's step;
    for ``"sgd"``: the sample-weighted mean of the minibatch losses)."""
    epochs_run: int
    converged: bool
    """Whether the loss went below ``loss_tol``."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """If ``record_every > 0``: dicts with ``epoch``, ``loss``, ``accuracy`` (training accuracy of the model's
    prediction, in eval mode), ``compression`` and ``discrimination`` (lists over ``z^0 .. z^{L-1}``), recorded
    before training, every ``record_every`` epochs and at the end."""
    wall_time: float = 0.0
    """Seconds spent in :func:`train`."""
    lrs: list[float] = field(default_factory=list)
    """Learning rate used in each epoch."""
    resumed_from: int | None = None
    """Epoch at which this run resumed from a checkpoint (``None``: started from scratch)."""

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else math.nan


def cosine_lr(epoch: int, config: TrainConfig) -> float:
    """Learning rate of ``epoch`` (0-based) under ``config``'s schedule."""
    if config.schedule == "constant":
        return config.lr
    final = config.lr * config.final_lr_factor
    t = min(epoch, config.epochs) / config.epochs
    return final + 0.5 * (config.lr - final) * (1.0 + math.cos(math.pi * t))


def _loss_fn(config: TrainConfig, n_classes: int):
    if config.loss == "mse":

        def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            target = torch.nn.functional.one_hot(y, n_classes).to(out.dtype)
            return ((config.alpha * out - target) ** 2).sum(dim=1).mean()

        return mse

    def ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(config.alpha * out, y)

    return ce


def _record(model: nn.Module, X: torch.Tensor, y: torch.Tensor, epoch: int, loss: float) -> dict[str, Any]:
    from pnc.features import eval_mode
    from pnc.metrics import compression, discrimination

    with eval_mode(model):
        feats = model.forward_features(X)
        accuracy = float((model(X).argmax(1) == y).double().mean())
    return {
        "epoch": epoch,
        "loss": loss,
        "accuracy": accuracy,
        "compression": [float(compression(f, y)) for f in feats],
        "discrimination": [float(discrimination(f, y)) for f in feats],
    }


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :func:`train` onto the CPU with ``torch.load(weights_only=True)``.

    Raises ``ValueError`` if the file is not such a checkpoint.
    """
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise ValueError(f"{path} is not a readable checkpoint: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a pnc.train checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def _save_checkpoint(
    path: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    config: TrainConfig,
    result: TrainResult,
    finished: bool,
    elapsed: float,
) -> None:
    from pnc.cache import atomic_write_bytes

    state = {
        "format": CHECKPOINT_FORMAT,
        "config": dataclasses.asdict(config),
        "epoch": result.epochs_run,
        "finished": finished,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "generator": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "losses": list(result.losses),
        "lrs": list(result.lrs),
        "history": list(result.history),
        "converged": result.converged,
        "elapsed": elapsed,
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _restore_checkpoint(
    state: dict[str, Any], model: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator, config: TrainConfig
) -> TrainResult:
    saved = state["config"]
    current = dataclasses.asdict(config)
    if saved != current:
        diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise ValueError(f"checkpoint was written with a different TrainConfig (differs in {diff}); "
                         "delete it or pass another checkpoint_path")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    gen.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return TrainResult(
        losses=[float(v) for v in state["losses"]],
        epochs_run=int(state["epoch"]),
        converged=bool(state["converged"]),
        history=list(state["history"]),
        lrs=[float(v) for v in state["lrs"]],
        resumed_from=int(state["epoch"]),
    )


def train(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig | None = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 50,
    callback: Callable[[int, float], Any] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``(X, y)`` and return the loss curve and recorded metrics.

    ``X`` is cast to the dtype and device of the model's parameters. Deterministic for a fixed model
    seed and ``config.seed`` on CPU (the shuffling uses a local ``torch.Generator``).

    With ``checkpoint_path``, the state is saved atomically every ``checkpoint_every`` epochs and when
    training ends; if the file exists, training resumes from it (its config must equal ``config``; a
    finished checkpoint restores the trained model and returns at once). ``callback(epoch, loss)`` is
    called after every epoch (after that epoch's checkpoint), e.g. for a progress bar.
    """
    if config is None:
        config = TrainConfig()
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be an integer >= 1, got {checkpoint_every!r}")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable, got {callback!r}")
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    if not isinstance(X, torch.Tensor) or X.ndim != 2:
        raise ValueError(f"X must be a 2-d torch tensor (N, d), got {getattr(X, 'shape', type(X))}")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be a 1-d torch tensor of {X.shape[0]} labels")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    if config.record_every > 0 and not hasattr(model, "forward_features"):
        raise ValueError("record_every > 0 needs a model with forward_features()")

    start = time.perf_counter()
    X = X.to(dtype=params[0].dtype, device=params[0].device)
    y = y.to(device=params[0].device, dtype=torch.int64)
    n = X.shape[0]
    n_classes = _out_dim(model)
    if int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes - 1}] for a model with {n_classes} outputs")
    loss_fn = _loss_fn(config, n_classes)
    opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)

    model.train()
    result = TrainResult(losses=[], epochs_run=0, converged=False)
    elapsed_before = 0.0
    if ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt)
        result = _restore_checkpoint(state, model, opt, gen, config)
        elapsed_before = float(state["elapsed"])
        model.train()
        if state["finished"]:
            result.wall_time = elapsed_before
            return result
    elif config.record_every > 0:
        model.eval()
        with torch.no_grad():
            init_loss = float(loss_fn(model(X), y))
        model.train()
        result.history.append(_record(model, X, y, 0, init_loss))

    def save(finished: bool) -> None:
        if ckpt is not None:
            elapsed = elapsed_before + time.perf_counter() - start
            _save_checkpoint(ckpt, model, opt, gen, config, result, finished, elapsed)

    for epoch in range(result.epochs_run, config.epochs):
        lr = cosine_lr(epoch, config)
        for group in opt.param_groups:
            group["lr"] = lr
        result.lrs.append(lr)
        if config.optimizer == "gd":
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X), y)
            loss.backward()
            opt.step()
            epoch_loss = float(loss.detach())
        else:
            perm = torch.randperm(n, generator=gen).to(X.device)
            total = 0.0
            for i in range(0, n, config.batch_size):
                idx = perm[i : i + config.batch_size]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(X[idx]), y[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.shape[0]
            epoch_loss = total / n
        result.losses.append(epoch_loss)
        result.epochs_run = epoch + 1
        if not math.isfinite(epoch_loss):
            break  # diverged; converged stays False
        done = (
            config.loss_tol is not None
            and (epoch + 1) % config.check_every == 0
            and epoch_loss < config.loss_tol
        )
        if done:
            result.converged = True
        if config.record_every > 0 and ((epoch + 1) % config.record_every == 0 or done):
            result.history.append(_record(model, X, y, epoch + 1, epoch_loss))
        if done:
            break
        if (epoch + 1) % checkpoint_every == 0 and epoch + 1 < config.epochs:
            save(finished=False)
        if callback is not None:
            callback(epoch + 1, epoch_loss)

    if config.record_every > 0 and result.history[-1]["epoch"] != result.epochs_run:
        result.history.append(_record(model, X, y, result.epochs_run, result.final_loss))
    save(finished=True)
    if callback is not None and result.converged:
        callback(result.epochs_run, result.final_loss)
    result.wall_time = elapsed_before + time.perf_counter() - start
    return result


def _out_dim(model: nn.Module) -> int:
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Linear):
        return classifier.out_features
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("cannot determine the number of outputs of a model without nn.Linear layers")
    return linears[-1].out_features
