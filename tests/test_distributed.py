"""``measure(distributed=True)``: two CPU processes (gloo) measuring halves of the data give the one-process table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import pnc
from pnc.distributed import all_reduce_stats


def model_and_data() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    g = torch.Generator().manual_seed(3)
    y = torch.randint(0, 4, (301,), generator=g)
    x = torch.randn(301, 6, generator=g) + y[:, None].float()
    return model, x, y


METRICS = ("compression", "discrimination", "nc1", "cdnv", "rank", "effective_rank", "nc2")


def _worker(rank: int, world: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        model, x, y = model_and_data()
        # uneven shards; rank 1 never sees class 3 in its first batch and has fewer samples
        shard = slice(0, 180) if rank == 0 else slice(180, None)
        report = pnc.measure(model, (x[shard], y[shard]), metrics=METRICS, batch_size=64, distributed=True)
        Path(out, f"rank{rank}.json").write_text(report.to_json())
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one(tmp_path: Path) -> None:
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_worker, args=(2, init, str(tmp_path)), nprocs=2, join=True)
    model, x, y = model_and_data()
    single = json.loads(pnc.measure(model, (x, y), metrics=METRICS, batch_size=64).to_json())
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["columns"] == single["columns"]
        for row_got, row_one in zip(got["rows"], single["rows"], strict=True):
            for column in single["columns"]:
                a, b = row_got[column], row_one[column]
                if isinstance(b, float):
                    assert a == pytest.approx(b, rel=1e-12, abs=1e-14), (rank, row_one["name"], column)
                else:
                    assert a == b, (rank, row_one["name"], column)


def test_reduce_needs_a_process_group() -> None:
    stats = pnc.collect_features(*[model_and_data()[0]], (model_and_data()[1], model_and_data()[2]))
    with pytest.raises(ValueError, match="init_process_group"):
        all_reduce_stats(stats)
    assert np.isfinite(pnc.compression(stats["input"]))
