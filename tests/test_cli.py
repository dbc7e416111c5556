"""The command lines: the book's `python -m pnc.book` (fake experiment registry, except one subprocess smoke test)
and the core's `pnc` / `python -m pnc` (download; `measure` is exercised in tests/test_install.py)."""

import json
import subprocess
import sys

import pytest
from test_runner import REGISTRY, _broken  # tests/ is on sys.path (rootdir conftest)

import pnc.book.runner as runner
from pnc.book.cli import main
from pnc.cli import main as core_main


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "experiment_registry", lambda: {**REGISTRY, "broken": _broken({"layers": []})})
    monkeypatch.setenv("PNC_CACHE_DIR", str(tmp_path / "cache"))


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "fake: a fake layerwise run" in out and "paper: depth=4, width=1024" in out and "transfer" in out


def test_run_writes_results_and_prints_a_table(tmp_path, capsys):
    code = main(["run", "fake", "--scale", "paper", "--device", "cpu", "--seed", "3", "--out", str(tmp_path),
                 "--set", "lr=0.5", "--set", "note=hello", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    doc = json.loads((tmp_path / "fake-paper-seed3.json").read_text())
    assert doc["config"]["lr"] == 0.5 and doc["config"]["note"] == "hello" and doc["seed"] == 3
    assert "compression" in out and "wrote" in out and "fake-paper-seed3.json" in out
    assert main(["run", "fake", "--scale", "paper", "--device", "cpu", "--seed", "3", "--out", str(tmp_path),
                 "--set", "lr=0.5", "--set", "note=hello", "--quiet"]) == 0
    assert "from the result cache" in capsys.readouterr().out
    assert main(["run", "transfer", "--device", "cpu", "--out", str(tmp_path), "--no-cache", "--quiet"]) == 0
    assert "transfer accuracy by head layers: 1: 0.6, 2: 0.65, 3: 0.7" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "nosuch"], "unknown experiment 'nosuch'; known: broken, ckpt, fake, transfer"),
        (["run", "fake", "--bogus"], "unrecognized arguments: --bogus"),
        (["run", "fake", "--scale", "huge"], "invalid choice: 'huge'"),
        (["run", "fake", "--device", "tpu"], "invalid choice: 'tpu'"),
        (["run", "fake", "--seed", "x"], "invalid int value"),
        (["run", "fake", "--seed", "-1"], "--seed must be >= 0"),
        (["run", "fake", "--set", "lrr=1"], "unknown option 'lrr'"),
        (["run", "fake", "--set", "lr"], "--set expects key=value"),
        (["run", "fake", "--set", "depth=2.5"], "option 'depth' must be an integer"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "required"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(argv, message, capsys, tmp_path):
    assert main([*argv, *(["--out", str(tmp_path)] if argv[:1] == ["run"] else [])]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["download", "svhn"], "unknown data set 'svhn'"),
        (["measure", "--model", "nocolon", "--data", "x.npz"], "--model must look like MODULE:FACTORY"),
        (["measure", "--model", "no_such_module_xyz:make", "--data", "x.npz"], "cannot import 'no_such_module_xyz'"),
        (["run", "hybrid"], "invalid choice: 'run'"),
    ],
)
def test_core_cli_bad_usage_exits_2(argv, message, capsys):
    assert core_main(argv) == 2
    assert message in capsys.readouterr().err


def test_cuda_request_without_gpu_is_a_usage_error(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["run", "fake", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_failing_experiment_exits_1(capsys, tmp_path):
    assert main(["run", "broken", "--device", "cpu", "--out", str(tmp_path), "--quiet"]) == 1
    assert "broke the result contract" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.json"))


def test_download_command(monkeypatch, tmp_path, capsys):
    import pnc.download as dl

    monkeypatch.setattr(dl, "download_dataset", lambda name, root=None, progress=False: {"archive": tmp_path / "a"})
    assert core_main(["download", "cifar10", "--root", str(tmp_path)]) == 0
    assert "archive:" in capsys.readouterr().out


def test_python_dash_m_entry_points():
    core = subprocess.run([sys.executable, "-m", "pnc", "--help"], capture_output=True, text=True, timeout=120)
    assert core.returncode == 0 and "measure" in core.stdout and "download" in core.stdout
    assert "python -m pnc.book" in core.stdout  # says where the experiments went
    help_ = subprocess.run([sys.executable, "-m", "pnc.book", "--help"], capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0 and "run" in help_.stdout and "list" in help_.stdout
    bad = subprocess.run([sys.executable, "-m", "pnc.book", "run", "no-such-experiment"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "unknown experiment 'no-such-experiment'" in bad.stderr
