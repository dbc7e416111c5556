"""Combine class statistics measured by several processes (``torch.distributed``), exactly.

Each process measures its own shard of the data; :func:`all_reduce_stats` then gives every process the statistics
of the whole data set. The sufficient statistics (per class: count, mean, centred sum of squares; the d×d scatter
when tracked) of all processes are gathered and merged in rank order with the same pairwise formula
:meth:`pnc.ClassStats.merge` uses, so the result equals one process reading all shards in that order (to rounding),
even when the processes saw different classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .metrics import ClassStats

__all__ = ["all_reduce_stats"]


def _state(st: ClassStats) -> dict[str, Any]:
    return {"dim": st._dim, "track": st.track_covariance, "classes": st._classes, "counts": st._counts,
            "means": st._means, "ss": st._ss, "scatter": st._scatter}


def _from_state(state: dict[str, Any]) -> ClassStats:
    st = ClassStats(state["dim"], track_covariance=state["track"])
    st._dim = state["dim"]
    st._classes, st._counts, st._means, st._ss = state["classes"], state["counts"], state["means"], state["ss"]
    st._scatter = state["scatter"]
    return st


def all_reduce_stats(stats: Mapping[str, ClassStats], group: Any = None) -> dict[str, ClassStats]:
    """``{layer: ClassStats}`` of all processes of ``group`` merged, returned on every process.

    Every process must pass the same layer names in the same order (they run the same model). Needs an initialised
    process group (``torch.distributed.init_process_group``, any backend: the statistics travel as objects).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError("all_reduce_stats needs an initialised torch.distributed process group "
                         "(torch.distributed.init_process_group)")
    local = [(name, _state(st)) for name, st in stats.items()]
    gathered: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, local, group=group)
    names = [name for name, _ in local]
    for rank, other in enumerate(gathered):
        if [name for name, _ in other] != names:
            raise ValueError(f"process {rank} measured layers {[n for n, _ in other]}, this one {names}: every "
                             "process must measure the same layers")
    out: dict[str, ClassStats] = {}
    for i, name in enumerate(names):
        merged = ClassStats(track_covariance=all(other[i][1]["track"] for other in gathered))
        for other in gathered:
            part = _from_state(other[i][1])
            if part._classes.size:
                merged = merged.merge(part)
        out[name] = merged
    return out
