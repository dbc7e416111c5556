"""Combine class statistics measured by several processes (``torch.distributed``), exactly.

Each process measures its own shard of the data; :func:`all_reduce_stats` then gives every process the statistics
of the whole data set. The sufficient statistics of all processes (:meth:`pnc.ClassStats.state_dict`: per class
count, mean, centred sum of squares; the d×d scatter when tracked) are gathered and merged in rank order with the same
pairwise formula :meth:`pnc.ClassStats.merge` uses, so the result equals one process reading all shards in that order
(to rounding), even when the processes saw different classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .stats import ClassStats

__all__ = ["all_reduce_stats"]


def all_reduce_stats(stats: Mapping[str, ClassStats], group: Any = None) -> dict[str, ClassStats]:
    """``{layer: ClassStats}`` of all processes of ``group`` merged, returned on every process.

    Every process must pass the same layer names in the same order (they run the same model). Needs an initialised
    process group (``torch.distributed.init_process_group``, any backend: the statistics travel as objects).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError("all_reduce_stats needs an initialised torch.distributed process group "
                         "(torch.distributed.init_process_group)")
    local = [(name, st.state_dict()) for name, st in stats.items()]
    gathered: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, local, group=group)
    names = [name for name, _ in local]
    for rank, other in enumerate(gathered):
        if [name for name, _ in other] != names:
            raise ValueError(f"process {rank} measured layers {[n for n, _ in other]}, this one {names}: every "
                             "process must measure the same layers")
    out: dict[str, ClassStats] = {}
    for i, name in enumerate(names):
        merged = ClassStats(track_covariance=all(other[i][1]["track_covariance"] for other in gathered))
        for other in gathered:
            merged.merge_state(other[i][1])
        out[name] = merged
    return out
