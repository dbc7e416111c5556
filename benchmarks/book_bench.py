"""The book: clean build time, cached rebuild time and each chapter's execution time."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._util import Section, fmt_time

ROOT = Path(__file__).resolve().parents[1]


def _build(out: Path) -> tuple[float, int, str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe), "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"]
    # a result cache of its own (empty at the clean build): the experiments run as on a fresh machine
    env = {**os.environ, "PNC_CACHE_DIR": str(out / "pnc-result-cache")}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, proc.returncode, (proc.stdout + proc.stderr)[-2000:]


def chapter_times(out: Path) -> list[tuple[str, float]]:
    """(notebook, execution seconds) from the build's jupyter-cache (myst-nb stores them per record)."""
    from jupyter_cache import get_cache

    found = [p for p in out.rglob(".jupyter_cache") if p.is_dir()]
    if not found:
        return []
    cache = get_cache(found[0])
    rows = []
    for rec in cache.list_cache_records():
        secs = (rec.data or {}).get("execution_seconds")
        rows.append((str(Path(rec.uri).relative_to(ROOT)) if rec.uri.startswith(str(ROOT)) else rec.uri,
                     float("nan") if secs is None else float(secs)))
    return sorted(rows)


def run(quick: bool = False, device: str = "cpu", out: Path | None = None) -> Section:
    """Build the book twice into ``out`` (a temporary folder when None, removed afterwards)."""
    if out is None:
        with tempfile.TemporaryDirectory(prefix="pnc-bench-book-") as tmp:
            return run(quick, device, Path(tmp))
    sec = Section(
        "The book",
        "`jupyter-book build . --path-output <temp dir> -W -n --keep-going` (the repository's `_build` is not "
        "touched): a clean build (empty jupyter-cache and an empty `pnc` result cache, `PNC_CACHE_DIR`: every "
        "chapter executed and every experiment trained), then the same command again (cached rebuild: nothing "
        "changed). Chapter execution times come from the build's jupyter-cache.",
    )
    t_clean, rc1, log1 = _build(out)
    t_cached, rc2, log2 = _build(out)
    chapters = chapter_times(out)
    sec.add("clean build (executes every chapter)", fmt_time(t_clean), f"exit code {rc1}", "",
            "< 15 min", rc1 == 0 and t_clean < 15 * 60)
    sec.add("cached rebuild (nothing changed)", fmt_time(t_cached), f"exit code {rc2}", "",
            "< 60 s", rc2 == 0 and t_cached < 60)
    total = 0.0
    for nb, secs in chapters:
        sec.add(f"execute `{nb}`", fmt_time(secs), "", "", "")
        total += secs if secs == secs else 0.0
    if chapters:
        sec.add("all chapters, execution only", fmt_time(total), "", "", "")
    else:
        sec.notes.append("No jupyter-cache records found, so no per-chapter times.")
    if rc1 != 0:
        sec.notes.append("The clean build failed; tail of its log:\n\n```text\n" + log1.strip() + "\n```")
    elif rc2 != 0:
        sec.notes.append("The cached rebuild failed; tail of its log:\n\n```text\n" + log2.strip() + "\n```")
    return sec
