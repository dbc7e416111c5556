"""Deterministic training loops: full-batch gradient descent or minibatch SGD, MSE or cross-entropy.

The MSE loss is the authors' ``(1/N) || alpha f(X) - Y ||_F^2``: the mean over samples of the sum
over classes of the squared error between ``alpha * output`` and the one-hot target. The learning
rate follows one cosine cycle from ``lr`` to ``lr * final_lr_factor`` over ``epochs`` epochs
(stepped once per epoch, as ``torch.optim.lr_scheduler.CosineAnnealingLR``), or stays constant.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["TrainConfig", "TrainResult", "cosine_lr", "train"]

_OPTIMIZERS = ("gd", "sgd")
_LOSSES = ("mse", "cross_entropy")
_SCHEDULES = ("cosine", "constant")


@dataclass
class TrainConfig:
    """Training options (validated on construction; a bad value raises ``ValueError`` naming it).

    Defaults are the authors' theory-verification recipe (theory.md section 7.1) except ``alpha``
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
    """If ``record_every > 0``: dicts with ``epoch``, ``loss``, ``compression`` and ``discrimination``
    (lists over ``z^0 .. z^{L-1}``), recorded before training, every ``record_every`` epochs and at
    the end."""
    wall_time: float = 0.0
    """Seconds spent in :func:`train`."""
    lrs: list[float] = field(default_factory=list)
    """Learning rate used in each epoch."""

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
    from pnc.metrics import compression, discrimination

    was_training = model.training
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(X)
    model.train(was_training)
    return {
        "epoch": epoch,
        "loss": loss,
        "compression": [float(compression(f, y)) for f in feats],
        "discrimination": [float(discrimination(f, y)) for f in feats],
    }


def train(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, config: TrainConfig | None = None
) -> TrainResult:
    """Train ``model`` in place on ``(X, y)`` and return the loss curve and recorded metrics.

    ``X`` is cast to the dtype and device of the model's parameters. Deterministic for a fixed model
    seed and ``config.seed`` on CPU (the shuffling uses a local ``torch.Generator``).
    """
    if config is None:
        config = TrainConfig()
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
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
    if config.record_every > 0:
        model.eval()
        with torch.no_grad():
            init_loss = float(loss_fn(model(X), y))
        model.train()
        result.history.append(_record(model, X, y, 0, init_loss))

    for epoch in range(config.epochs):
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

    if config.record_every > 0 and result.history[-1]["epoch"] != result.epochs_run:
        result.history.append(_record(model, X, y, result.epochs_run, result.final_loss))
    result.wall_time = time.perf_counter() - start
    return result


def _out_dim(model: nn.Module) -> int:
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Linear):
        return classifier.out_features
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("cannot determine the number of outputs of a model without nn.Linear layers")
    return linears[-1].out_features
