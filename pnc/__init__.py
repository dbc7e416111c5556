"""pnc: measure and explain progressive neural collapse in deep networks.

The package behind the *pnc-book* textbook. The core library, one module per concern (it needs numpy and torch):

- :mod:`pnc.data`, :mod:`pnc.download`: synthetic and real data sets, a checksummed downloader;
- :mod:`pnc.models`, :mod:`pnc.train`: deep linear networks, MLPs, hybrids, a small ResNet; seeded training;
- :mod:`pnc.features`: per-layer features through forward hooks (layer choice, pooling, batch adapters);
- :mod:`pnc.stats`: streaming class statistics (:class:`ClassStats`, with a state protocol); :mod:`pnc.metrics`: every
  collapse metric; :mod:`pnc.registry`: the table of metrics that the layerwise tables read;
- :mod:`pnc.report`: the one-call layerwise table :func:`pnc.measure`; :mod:`pnc.classifier`: the model's
  classifier (NC3, NC4, the book's last-layer collapse); :mod:`pnc.distributed`: across processes;
  :mod:`pnc.tracking`: during training; :mod:`pnc.probes`: linear probes;
- :mod:`pnc.theory`: closed forms and exact constructions; :mod:`pnc.fits`: geometric and linear fits;
- :mod:`pnc.plotting` (needs matplotlib): the house style and the standard layerwise plot;
- :mod:`pnc.cache`: atomic files and the result cache; :mod:`pnc.cli`: ``pnc measure``, ``pnc download``.

:mod:`pnc.book` holds the book's chapter studies, experiments, explorers and figures; the core imports nothing from it.
"""

from importlib import import_module as _import_module
from typing import Any as _Any

__version__ = "0.2.0"

from .features import LayerFeatures, collect_features
from .metrics import compression, discrimination, nc1
from .report import LayerReport, measure, report_from_features
from .stats import ClassStats

_SUBMODULES = (
    "data", "download", "models", "train", "features", "stats", "metrics", "registry", "classifier", "report",
    "distributed", "tracking", "probes", "theory", "fits", "plotting", "cache", "cli", "book",
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
    "report_from_features",
    *_SUBMODULES,
]


def __getattr__(name: str) -> _Any:
    # Submodules load lazily so `import pnc` stays cheap (plotting pulls in matplotlib).
    if name in _SUBMODULES:
        module = _import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'pnc' has no attribute {name!r}")
