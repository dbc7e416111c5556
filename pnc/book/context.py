"""What an experiment's ``run(config, ctx)`` gets besides its configuration: seed, device, progress, checkpoints.

Its own module so that :mod:`pnc.book.experiments` (which runs with a context) and :mod:`pnc.book.runner` (which
makes one and looks experiments up) do not import each other.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

__all__ = ["RunContext"]


@dataclasses.dataclass
class RunContext:
    """What an experiment's ``run(config, ctx)`` gets besides its configuration."""

    seed: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    scale: str = "book"
    progress: bool = False
    """Show tqdm progress bars (on stderr)."""
    checkpoint_dir: Path | None = None
    """Folder for training checkpoints (``None``: no checkpoints)."""

    def progress_bar(self, iterable: Iterable[Any], total: int | None = None, desc: str = "") -> Iterable[Any]:
        """``iterable`` wrapped in a tqdm bar when ``progress`` is on, else unchanged."""
        if not self.progress:
            return iterable
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, dynamic_ncols=True, leave=False)

    def checkpoint_path(self, tag: str) -> Path | None:
        """Checkpoint file for the training run named ``tag`` (``None`` when checkpoints are off)."""
        if self.checkpoint_dir is None:
            return None
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"checkpoint tag must be a non-empty string, got {tag!r}")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag).strip("._") or "run"
        Path(self.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        return Path(self.checkpoint_dir) / f"{safe}.pt"
