"""Install ``pnc`` as a researcher would, into a fresh virtual environment, and use it.

1. ``pip install pnc`` (no extras) next to the torch the researcher already has (here the same torch release as the
   book's lock, from the same package sources dev.py installs from): nothing of the book stack comes in (no IPython,
   ipywidgets, matplotlib, scikit-learn, pandas; sympy only as torch's own dependency), and a residual CNN is
   measured from a script and through ``python -m pnc measure`` on a saved ``weights_only`` checkpoint.
2. Without the ``cli`` extra ``python -m pnc.book run`` says which extra to install; after
   ``pip install "pnc[cli]"`` ``python -m pnc.book list`` works.

The package is installed from a copy of its sources, so the build leaves nothing in the working tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import venv
from importlib import metadata
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.install

BOOK_STACK = ("ipython", "ipykernel", "ipywidgets", "matplotlib", "scikit-learn", "pandas", "jupyter-book", "tqdm")

MODEL_MODULE = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.bn1, self.bn2 = nn.BatchNorm2d(c), nn.BatchNorm2d(c)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x)


class Net(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, padding=1)
        self.relu = nn.ReLU()
        self.blocks = nn.Sequential(Block(width), Block(width))
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        return self.head(self.blocks(self.relu(self.stem(x))).mean(dim=(2, 3)))


def make(width=8):
    torch.manual_seed(0)
    return Net(width)
'''

SCRIPT = '''
import json, sys
import torch
import pnc
from mymodels import make

model = make()
g = torch.Generator().manual_seed(0)
y = torch.arange(60) % 3
x = torch.randn(60, 1, 8, 8, generator=g) + y.view(-1, 1, 1, 1).float()
report = pnc.measure(model, (x, y))
torch.save(model.state_dict(), "weights.pt")
import numpy as np
np.savez("data.npz", x=x.numpy(), y=y.numpy())
json.dump({"names": report.names, "compression": [float(v) for v in report["compression"]],
           "modules": sorted(m.split(".")[0] for m in sys.modules if m.split(".")[0] in
                             ("matplotlib", "IPython", "ipywidgets", "sklearn", "sympy", "pandas"))},
          open("report.json", "w"))
'''


def _source_copy(dest: Path) -> Path:
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "pnc", dest / "pnc", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _run(cmd: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _installed(python: Path, cwd: Path) -> dict[str, list[str]]:
    """``{distribution: [names it requires]}`` of the environment of ``python``."""
    code = ("import json; from importlib import metadata as m; import re; print(json.dumps({d.metadata['Name'].lower()"
            ": [re.split(r'[ ;<>=!~\\[(]', r)[0].lower() for r in (d.requires or []) if 'extra ==' not in r]"
            " for d in m.distributions()}))")
    return json.loads(_run([str(python), "-c", code], cwd).stdout)


def test_plain_install_measures_a_model_without_the_book_stack(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    source = _source_copy(tmp_path / "src")
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    torch_version = metadata.version("torch").split("+")[0]
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"torch=={torch_version}",
          str(source)], tmp_path)

    installed = _installed(python, tmp_path)
    assert "pnc" in installed and "torch" in installed
    present = [name for name in BOOK_STACK if name in installed]
    assert not present, f"a plain `pip install pnc` brought in the book stack: {present}"
    assert "sympy" not in installed["pnc"]
    needs_sympy = sorted(name for name, requires in installed.items() if "sympy" in requires)
    assert needs_sympy in ([], ["torch"]), f"sympy is required by {needs_sympy}"

    work = tmp_path / "work"
    work.mkdir()
    (work / "mymodels.py").write_text(textwrap.dedent(MODEL_MODULE))
    (work / "use.py").write_text(textwrap.dedent(SCRIPT))
    _run([str(python), "use.py"], work)
    report = json.loads((work / "report.json").read_text())
    assert report["names"] == ["input", "stem", "relu", "blocks.0", "blocks.1", "head"]
    assert all(value > 0 for value in report["compression"])
    assert report["modules"] in ([], ["sympy"]), f"measuring imported {report['modules']}"

    cli = _run([str(env_dir / "bin" / "pnc"), "--version"], work)
    assert cli.stdout.strip() == f"pnc {metadata.version('pnc')}"
    measured = _run([str(python), "-m", "pnc", "measure", "--model", "mymodels:make", "--weights", "weights.pt",
                     "--data", "data.npz", "--json", "cli.json"], work)
    assert "blocks.1" in measured.stdout
    from_cli = json.loads((work / "cli.json").read_text())
    by_cli = [row["compression"] for row in from_cli["rows"]]
    assert by_cli == pytest.approx(report["compression"], rel=1e-6)

    # an empty result cache: a result cached by an earlier book build would be returned without running anything
    clean = {**os.environ, "PNC_CACHE_DIR": str(tmp_path / "cache")}
    missing = subprocess.run([str(python), "-m", "pnc.book", "run", "hybrid"], cwd=work, capture_output=True,
                             text=True, env=clean)
    assert missing.returncode == 2 and "pip install 'pnc[cli]'" in missing.stderr, missing.stderr

    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{source}[cli]"], tmp_path)
    listed = _run([str(python), "-m", "pnc.book", "list"], work)
    assert "hybrid" in listed.stdout

