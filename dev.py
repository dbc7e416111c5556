#!/usr/bin/env python3
"""One entry point for the project's two jobs, run from a fresh clone with nothing but Python.

    python3 dev.py book    # create .venv, install the pinned stack, execute the chapters, build _build/html
    python3 dev.py test    # the same setup, then the whole test suite (CI runs exactly this)

Other commands: ``setup`` (environment only), ``lock`` (re-resolve requirements/lock.txt from the *.in files).
Only the standard library is used here, so this file runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements" / "lock.txt"
STAMP = VENV / ".pnc-installed"
BUILD_DIR = ROOT / "_build" / "html"
MIN_PYTHON = (3, 11)  # numpy 2.4 / scipy 1.17 in the lock need 3.11+


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd: list[str | os.PathLike[str]], **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (LOCK, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def setup() -> Path:
    """Create ``.venv`` and install the locked stack plus ``pnc`` (editable); skipped when up to date."""
    if sys.version_info < MIN_PYTHON:
        sys.exit(f"pnc-book needs Python {'.'.join(map(str, MIN_PYTHON))}+ (found {sys.version.split()[0]}).")
    python = _venv_python()
    if not python.exists():
        print(f"Creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return python
    # torch is pinned in the lock and installed in the same resolver run as everything else, so no
    # dependency can pull an unpinned (multi-GB CUDA) torch.
    _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", LOCK])
    _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps", "-e", ROOT])
    STAMP.write_text(fingerprint)
    return python


def book(python: Path) -> int:
    """Execute the chapters (cached) and build the HTML site; fail on any cell error or broken reference."""
    jb = python.parent / "jupyter-book"
    result = subprocess.run([str(jb), "build", str(ROOT), "-W", "-n", "--keep-going"], cwd=ROOT)
    if result.returncode == 0:
        print(f"\nThe book is built. Open file://{BUILD_DIR / 'index.html'}")
    else:
        print(f"\nThe build failed; notebook tracebacks are under {BUILD_DIR / 'reports'}", file=sys.stderr)
    return result.returncode


def test(python: Path, extra: list[str]) -> int:
    """Run lint and the whole pytest suite (unit, property, notebook and book build tests)."""
    lint = subprocess.run([str(python.parent / "ruff"), "check", "."], cwd=ROOT)
    if lint.returncode != 0:
        return lint.returncode
    return subprocess.run([str(python), "-m", "pytest", *extra], cwd=ROOT).returncode


def lock(python: Path) -> int:
    """Re-resolve the lock from requirements/*.in in a scratch environment (needs the registry)."""
    scratch = ROOT / ".venv-lock"
    venv.EnvBuilder(with_pip=True, clear=True).create(scratch)
    pip = scratch / "bin" / "python"
    _run([pip, "-m", "pip", "install", "-q", "-r", "requirements/book.in", "-r", "requirements/test.in"])
    frozen = subprocess.run([str(pip), "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
    lines = [line.replace("+cpu", "") for line in frozen.stdout.splitlines() if line and not line.startswith("-e")]
    header = "# Full resolved lock of the book + test stack (CPU). Regenerate: python3 dev.py lock\n"
    tmp = LOCK.with_suffix(".tmp")
    tmp.write_text(header + "\n".join(lines) + "\n")
    tmp.replace(LOCK)
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"book", "test", "setup", "lock"}:
        print(__doc__)
        return 2
    command, extra = argv[0], argv[1:]
    python = setup()
    if command == "book":
        return book(python)
    if command == "test":
        return test(python, extra)
    if command == "lock":
        return lock(python)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
