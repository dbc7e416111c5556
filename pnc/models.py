"""Deep linear, MLP and hybrid networks with the authors' scaled orthogonal initialisation.

Depth convention: ``depth = L`` is the number of weight matrices, classifier included, so a model
has ``L - 1`` feature blocks (in ``self.features``, an ``nn.Sequential``) followed by the bias-free
``self.classifier``. The hidden features are ``z^l``, ``l = 1..L-1``, the outputs of the blocks;
``z^0`` is the input. (The authors' code counts hidden layers: their ``num_layers`` is ``L - 1``.)

Initialisation never touches the global PyTorch RNG: layers are created uninitialised and filled
from a local ``torch.Generator`` seeded with ``seed``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_int as _check_int
from ._checks import check_seed as _check_seed

__all__ = [
    "INIT_SCHEMES", "DeepLinearNetwork", "HybridNetwork", "MLP", "ResidualBlock", "SmallResNet", "semi_orthogonal",
]

INIT_SCHEMES = ("orthogonal", "default", "gaussian")


def semi_orthogonal(rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-random ``rows x cols`` float64 matrix with orthonormal columns (``rows >= cols``) or
    orthonormal rows (``rows < cols``)."""
    tall = rows >= cols
    a = torch.randn(max(rows, cols), min(rows, cols), generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    # Fix the signs so that the distribution is Haar (QR alone is not sign-unique).
    signs = torch.sign(torch.diagonal(r))
    signs[signs == 0] = 1.0
    q = q * signs
    return q if tall else q.T


def _linear(in_dim: int, out_dim: int, dtype: torch.dtype) -> nn.Linear:
    # skip_init: no draw from the global RNG; the weights are set by _init_linear.
    return torch.nn.utils.skip_init(nn.Linear, in_dim, out_dim, bias=False, dtype=dtype)


class _LayeredNetwork(nn.Module):
    """Shared machinery: ``features`` (nn.Sequential of blocks) then a bias-free ``classifier``."""

    features: nn.Sequential
    classifier: nn.Linear

    def __init__(
        self,
        in_dim: int,
        width: int,
        n_classes: int,
        init: str,
        xi: float,
        std: float | None,
        seed: int,
        dtype: torch.dtype,
    ) -> None:
        super().__init__()
        self.in_dim = _check_int("in_dim", in_dim, 1)
        self.width = _check_int("width", width, 1)
        self.n_classes = _check_int("n_classes", n_classes, 1)
        if init not in INIT_SCHEMES:
            raise ValueError(f"init must be one of {INIT_SCHEMES}, got {init!r}")
        xi = float(xi)
        if not math.isfinite(xi) or xi <= 0:
            raise ValueError(f"xi (orthogonal init scale) must be a finite number > 0, got {xi}")
        if std is not None and (not math.isfinite(float(std)) or float(std) <= 0):
            raise ValueError(f"std (gaussian init) must be a finite number > 0 or None, got {std}")
        _check_seed(seed)
        if dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            raise ValueError(f"dtype must be a torch floating dtype, got {dtype!r}")
        self.init = init
        self.xi = xi
        self.std = None if std is None else float(std)
        self.seed = seed
        self.dtype = dtype

    # -- initialisation --------------------------------------------------------------------------
    def _initialise(self) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        linears = self.linear_layers()
        for i, lin in enumerate(linears):
            lin.weight.data.copy_(self._init_weight(lin, gen, is_classifier=i == len(linears) - 1))
        for m in self.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.reset_parameters()  # deterministic: weight 1, bias 0, running stats reset

    def _init_weight(self, lin: nn.Linear, gen: torch.Generator, is_classifier: bool) -> torch.Tensor:
        out_dim, in_dim = lin.weight.shape
        if self.init == "orthogonal":
            if is_classifier and in_dim >= out_dim:
                # xi * [O_K, 0]: a K x K orthogonal block, zero-padded on the right.
                w = torch.zeros(out_dim, in_dim, dtype=torch.float64)
                w[:, :out_dim] = semi_orthogonal(out_dim, out_dim, gen)
            else:
                w = semi_orthogonal(out_dim, in_dim, gen)
            w = self.xi * w
        elif self.init == "default":
            # PyTorch's nn.Linear default (kaiming_uniform_ with a=sqrt(5)): U(-1/sqrt(fan_in), +).
            bound = 1.0 / math.sqrt(in_dim)
            w = (2.0 * torch.rand(out_dim, in_dim, generator=gen, dtype=torch.float64) - 1.0) * bound
        else:  # gaussian
            std = self.std if self.std is not None else math.sqrt(2.0 / in_dim)
            w = std * torch.randn(out_dim, in_dim, generator=gen, dtype=torch.float64)
        return w.to(self.dtype)

    # -- public API ------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """``L``: number of weight matrices, classifier included."""
        return len(self.features) + 1

    def linear_layers(self) -> list[nn.Linear]:
        """All ``nn.Linear`` modules in forward order, the classifier last."""
        return [m for m in self.features.modules() if isinstance(m, nn.Linear)] + [self.classifier]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Network output ``f(x)`` of shape ``(N, n_classes)`` (no output multiplier alpha)."""
        return self.classifier(self.features(x))

    def feature_layers(self) -> list[tuple[str, nn.Module]]:
        """``(name, module)`` for the modules whose outputs are ``z^1, ..., z^{L-1}``, in order."""
        return [(f"features.{i}", block) for i, block in enumerate(self.features)]

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[z^0 = x, z^1, ..., z^{L-1}]`` (length ``L``); the classifier output is not included."""
        feats = [x]
        h = x
        for block in self.features:
            h = block(h)
            feats.append(h)
        return feats


class DeepLinearNetwork(_LayeredNetwork):
    """Bias-free deep linear network ``f(x) = W_L ... W_1 x``.

    ``W_1`` is ``width x in_dim``, the ``L - 2`` hidden maps are ``width x width`` and the classifier
    ``W_L`` is ``n_classes x width``. With ``depth=1`` the network is the single map ``W_1`` (the
    classifier) and has no hidden features.

    Init schemes: ``"orthogonal"`` (the authors': ``W_1 = xi * (orthonormal columns, or rows if
    width < in_dim)``, hidden ``xi * orthogonal``, classifier ``xi * [O_K, 0]``), ``"default"``
    (PyTorch's ``nn.Linear`` default) and ``"gaussian"`` (i.i.d. ``N(0, std^2)``, ``std`` defaulting
    to Kaiming's ``sqrt(2 / fan_in)``). Default dtype is float64, as for the theory data.
    """

    def __init__(
        self,
        in_dim: int,
        width: int,
        n_classes: int,
        depth: int,
        init: str = "orthogonal",
        xi: float = 0.1,
        std: float | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(in_dim, width, n_classes, init, xi, std, seed, dtype)
        depth = _check_int("depth", depth, 1)
        blocks: list[nn.Module] = []
        prev = in_dim
        for _ in range(depth - 1):
            blocks.append(_linear(prev, width, dtype))
            prev = width
        self.features = nn.Sequential(*blocks)
        self.classifier = _linear(prev, n_classes, dtype)
        self._initialise()

    def weights(self) -> list[torch.Tensor]:
        """The weight matrices ``[W_1, ..., W_L]`` (the live parameters, not copies)."""
        return [lin.weight for lin in self.linear_layers()]

    def end_to_end(self) -> torch.Tensor:
        """The product ``W_{L:1} = W_L ... W_1`` (detached), shape ``(n_classes, in_dim)``."""
        from .theory import end_to_end

        ws = self.weights()
        return torch.from_numpy(end_to_end([w.detach().cpu() for w in ws])).to(ws[0].dtype).to(ws[0].device)


def _nonlinear_block(in_dim: int, width: int, batch_norm: bool, dtype: torch.dtype) -> nn.Sequential:
    mods: list[nn.Module] = [_linear(in_dim, width, dtype)]
    if batch_norm:
        mods.append(nn.BatchNorm1d(width, dtype=dtype))
    mods.append(nn.ReLU())
    return nn.Sequential(*mods)


class MLP(_LayeredNetwork):
    """``depth - 1`` blocks ``Linear(no bias) -> BatchNorm1d -> ReLU``, then a bias-free classifier.

    The authors' CIFAR-10 MLP is ``MLP(3072, 1024, 10, depth=8, xi=0.1)``. Set ``batch_norm=False``
    for plain ``Linear -> ReLU`` blocks. Init schemes as for :class:`DeepLinearNetwork`. Features of a
    network with BatchNorm depend on train/eval mode: measure in ``model.eval()``.
    """

    def __init__(
        self,
        in_dim: int,
        width: int,
        n_classes: int,
        depth: int,
        init: str = "orthogonal",
        xi: float = 0.1,
        std: float | None = None,
        batch_norm: bool = True,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(in_dim, width, n_classes, init, xi, std, seed, dtype)
        depth = _check_int("depth", depth, 2)
        blocks = [
            _nonlinear_block(in_dim if i == 0 else width, width, batch_norm, dtype) for i in range(depth - 1)
        ]
        self.features = nn.Sequential(*blocks)
        self.classifier = _linear(width, n_classes, dtype)
        self._initialise()


class HybridNetwork(_LayeredNetwork):
    """``n_nonlinear`` MLP blocks, then ``n_linear`` plain bias-free linear layers, then a classifier.

    ``depth = n_nonlinear + n_linear + 1``. The authors' CIFAR-10 hybrid ("3-layer MLP + 5-layer
    DLN") is ``HybridNetwork(3072, 1024, 10, n_nonlinear=3, n_linear=4, xi=0.1)`` trained with
    ``alpha=100``.
    """

    def __init__(
        self,
        in_dim: int,
        width: int,
        n_classes: int,
        n_nonlinear: int,
        n_linear: int,
        init: str = "orthogonal",
        xi: float = 0.1,
        std: float | None = None,
        batch_norm: bool = True,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(in_dim, width, n_classes, init, xi, std, seed, dtype)
        self.n_nonlinear = _check_int("n_nonlinear", n_nonlinear, 0)
        self.n_linear = _check_int("n_linear", n_linear, 0)
        if n_nonlinear + n_linear < 1:
            raise ValueError("HybridNetwork needs at least one feature layer (n_nonlinear + n_linear >= 1)")
        blocks: list[nn.Module] = []
        prev = in_dim
        for _ in range(n_nonlinear):
            blocks.append(_nonlinear_block(prev, width, batch_norm, dtype))
            prev = width
        for _ in range(n_linear):
            blocks.append(_linear(prev, width, dtype))
            prev = width
        self.features = nn.Sequential(*blocks)
        self.classifier = _linear(width, n_classes, dtype)
        self._initialise()


class ResidualBlock(nn.Module):
    """A residual block written as torchvision writes ResNet's ``BasicBlock``: two 3×3 convolutions, one ``ReLU``
    module called twice, and the identity added before the second ReLU."""

    def __init__(self, width: int) -> None:
        super().__init__()
        width = _check_int("width", width, 1)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.relu(self.conv1(x))) + x)


class SmallResNet(nn.Module):
    """A small residual network for flattened square images: a convolutional stem, ``blocks`` residual blocks in
    ``layer1``, global average pooling and a linear classifier. It has no ``feature_layers``, like a user's model."""

    def __init__(self, side: int = 8, width: int = 8, blocks: int = 2, classes: int = 10, channels: int = 1) -> None:
        super().__init__()
        side, width = _check_int("side", side, 1), _check_int("width", width, 1)
        blocks, classes = _check_int("blocks", blocks, 1), _check_int("classes", classes, 2)
        channels = _check_int("channels", channels, 1)
        self.stem = nn.Sequential(nn.Unflatten(1, (channels, side, side)), nn.Conv2d(channels, width, 3, padding=1),
                                  nn.ReLU())
        self.layer1 = nn.Sequential(*(ResidualBlock(width) for _ in range(blocks)))
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer1(self.stem(x)).mean(dim=(2, 3)))
