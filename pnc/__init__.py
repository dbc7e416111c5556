"""pnc: measure and explain progressive neural collapse in deep networks.

The package behind the *pnc-book* textbook. One module per concern:

- :mod:`pnc.data` synthetic (and real) datasets,
- :mod:`pnc.models` deep linear networks, MLPs and hybrids,
- :mod:`pnc.train` seeded full-batch GD / SGD training,
- :mod:`pnc.features` per-layer feature collection through forward hooks,
- :mod:`pnc.metrics` streaming class statistics and the collapse metrics,
- :mod:`pnc.report` the one-call layerwise report :func:`pnc.measure`,
- :mod:`pnc.theory` closed forms and exact constructions,
- :mod:`pnc.plotting` the house style and the standard layerwise plot.
"""

from importlib import import_module as _import_module
from typing import Any as _Any

__version__ = "0.2.0"

from .features import LayerFeatures, collect_features
from .metrics import ClassStats, compression, discrimination, nc1
from .report import LayerReport, measure

_SUBMODULES = (
    "data", "download", "models", "train", "features", "metrics", "report", "theory", "plotting", "widgets",
    "fits", "tracking", "distributed",
    "figures", "cache", "runner", "experiments", "probes", "dynamics", "connections", "dln", "recipes", "assumptions",
    "measuring",
)

__all__ = [
    "__version__",
    "ClassStats",
    "LayerFeatures",
    "LayerReport",
    "collect_features",
    "compression",
    "discrimination",
    "measure",
    "nc1",
    *_SUBMODULES,
]


def __getattr__(name: str) -> _Any:
    # Submodules load lazily so `import pnc` stays cheap (plotting pulls in matplotlib).
    if name in _SUBMODULES:
        module = _import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'pnc' has no attribute {name!r}")
