"""Tests for pnc.book.runner with a fake experiment registry (independent of pnc.book.experiments)."""

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import pnc.book.runner as runner
from pnc.book.runner import RunContext, apply_overrides, load_or_run, parse_override, run_experiment, validate_result


@dataclass(frozen=True)
class FakeExperiment:
    name: str
    description: str
    book: dict
    paper: dict
    run: Any


CALLS: list[tuple[str, dict]] = []


def _layers(n=3, probe=True):
    rows = []
    for l in range(n):
        row = {"layer": l, "compression": 0.3**l, "discrimination": 0.1 * l, "nc1": 1.0 / (l + 1),
               "numerical_rank": 10 - l}
        if probe:
            row["probe_accuracy"] = min(1.0, 0.5 + 0.2 * l)
        rows.append(row)
    return rows


def _run_layerwise(config, ctx):
    CALLS.append(("layerwise", dict(config)))
    assert isinstance(ctx, RunContext) and ctx.device == torch.device("cpu")
    noise = {"torch": float(torch.rand(1)), "numpy": float(np.random.rand()), "python": random.random()}  # noqa: NPY002
    return {"layers": _layers(config["depth"]), "summary": {"noise": noise, "width": config["width"]},
            "arrays": {"losses": np.linspace(1.0, 0.0, config["epochs"]), "t": torch.ones(2)},
            "timings": {"train": 0.5}}


def _run_transfer(config, ctx):
    CALLS.append(("transfer", dict(config)))
    return {"layers": _layers(2, probe=False), "transfer_accuracy": [0.6, 0.65, 0.7][: config["heads"]]}


def _run_trains_with_checkpoints(config, ctx):
    """Trains a tiny model through pnc.train with ctx's checkpoint; fails once mid-run when asked."""
    from pnc.data import gaussian_mixture
    from pnc.models import MLP
    from pnc.train import TrainConfig, train

    X, y = gaussian_mixture(8, 3, 6, within_std=0.3, seed=0)
    model = MLP(6, 8, 3, depth=2, seed=ctx.seed, dtype=torch.float64)
    cfg = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, epochs=config["epochs"], batch_size=6, seed=ctx.seed)
    path = ctx.checkpoint_path("main model")
    CALLS.append(("ckpt", {"path": path, "exists": path is not None and path.exists()}))

    def cb(epoch, loss):
        if config["crash_at"] and epoch == config["crash_at"] and not FAILED:
            FAILED.append(epoch)
            raise KeyboardInterrupt

    result = train(model, X, y, cfg, checkpoint_path=path, checkpoint_every=2, callback=cb)
    return {"layers": _layers(2), "summary": {"losses": result.losses, "resumed_from": result.resumed_from}}


FAILED: list[int] = []

REGISTRY = {
    "fake": FakeExperiment("fake", "a fake layerwise run", {"depth": 3, "width": 8, "lr": 0.1, "epochs": 5,
                                                             "note": "x", "flag": False, "dims": [1, 2]},
                           {"depth": 4, "width": 1024, "lr": 0.01, "epochs": 7, "note": "x", "flag": False,
                            "dims": [1, 2]}, _run_layerwise),
    "transfer": FakeExperiment("transfer", "fake transfer", {"heads": 3}, {"heads": 3}, _run_transfer),
    "ckpt": FakeExperiment("ckpt", "trains", {"epochs": 9, "crash_at": 0}, {"epochs": 9, "crash_at": 0},
                           _run_trains_with_checkpoints),
}


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "experiment_registry", lambda: REGISTRY)
    monkeypatch.setenv("PNC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PNC_RESULTS_DIR", str(tmp_path / "no-results"))
    CALLS.clear()
    FAILED.clear()


def test_run_writes_json_and_arrays_with_metadata(tmp_path):
    res = run_experiment("fake", seed=2, device="cpu", out=tmp_path / "out", use_cache=False)
    path = tmp_path / "out" / "fake-book-seed2.json"
    assert res["results_path"] == str(path) and path.exists()
    doc = json.loads(path.read_text())
    for key in ("name", "scale", "seed", "config", "pnc_version", "timings", "device", "torch_version", "created"):
        assert key in doc
    assert doc["name"] == "fake" and doc["scale"] == "book" and doc["seed"] == 2 and doc["device"] == "cpu"
    assert doc["config"] == REGISTRY["fake"].book and doc["timings"]["train"] == 0.5 and doc["timings"]["total"] > 0
    assert doc["layers"] == _layers(3) and doc["arrays_file"] == "fake-book-seed2.npz" and "arrays" not in doc
    with np.load(tmp_path / "out" / "fake-book-seed2.npz", allow_pickle=False) as npz:
        assert np.allclose(npz["losses"], np.linspace(1, 0, 5)) and npz["t"].shape == (2,)
    assert isinstance(res["arrays"]["losses"], np.ndarray) and res["from_cache"] is False
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fake-book-seed2.json", "fake-book-seed2.npz"]
    loaded = runner.load_result(path)
    assert loaded["layers"] == doc["layers"] and np.allclose(loaded["arrays"]["losses"], res["arrays"]["losses"])


def test_seeding_makes_runs_reproducible():
    a = run_experiment("fake", seed=5, device="cpu", use_cache=False)
    torch.rand(3)
    np.random.rand()  # noqa: NPY002
    b = run_experiment("fake", seed=5, device="cpu", use_cache=False)
    c = run_experiment("fake", seed=6, device="cpu", use_cache=False)
    assert a["summary"]["noise"] == b["summary"]["noise"] != c["summary"]["noise"]


def test_cache_hit_skips_the_run_and_config_changes_miss(tmp_path):
    first = run_experiment("fake", device="cpu")
    second = run_experiment("fake", device="cpu", out=tmp_path / "o")
    assert len(CALLS) == 1 and second["from_cache"] and not first["from_cache"]
    assert second["layers"] == first["layers"] and second["timings"] == first["timings"]
    assert np.array_equal(second["arrays"]["losses"], first["arrays"]["losses"])
    assert (tmp_path / "o" / "fake-book-seed0.npz").exists()  # a cache hit still writes the result files
    run_experiment("fake", device="cpu", overrides={"lr": 0.2})
    run_experiment("fake", device="cpu", seed=1)
    run_experiment("fake", device="cpu", scale="paper")
    run_experiment("fake", device="cpu", use_cache=False)
    assert len(CALLS) == 5


def test_corrupt_cache_entry_is_recomputed(tmp_path):
    run_experiment("fake", device="cpu")
    for entry in (tmp_path / "cache").glob("*.json"):
        entry.write_text("{ not json")
    with pytest.warns(UserWarning, match="corrupt cache entry"):
        res = run_experiment("fake", device="cpu")
    assert len(CALLS) == 2 and not res["from_cache"]
    assert run_experiment("fake", device="cpu")["from_cache"]


def test_overrides_are_checked_and_typed():
    res = run_experiment("fake", device="cpu", overrides={"lr": 1, "depth": 2, "note": "y", "flag": True},
                         use_cache=False)
    cfg = CALLS[-1][1]
    assert cfg["lr"] == 1.0 and isinstance(cfg["lr"], float) and cfg["depth"] == 2 and len(res["layers"]) == 2
    assert res["config"]["flag"] is True
    with pytest.raises(ValueError, match="unknown option 'lrr'.*known options: depth"):
        apply_overrides(REGISTRY["fake"].book, {"lrr": 1})
    for key, value, word in [("depth", 2.5, "integer"), ("depth", True, "integer"), ("lr", "fast", "number"),
                             ("flag", 1, "boolean"), ("note", 3, "string"), ("dims", 3, "list")]:
        with pytest.raises(ValueError, match=f"option '{key}' must be .*{word}"):
            apply_overrides(REGISTRY["fake"].book, {key: value})
    assert apply_overrides(REGISTRY["fake"].book, {"depth": 4.0})["depth"] == 4


def test_parse_override():
    assert parse_override("lr=0.5") == ("lr", 0.5)
    assert parse_override("flag=true") == ("flag", True)
    assert parse_override("dims=[1, 2]") == ("dims", [1, 2])
    assert parse_override("dataset=cifar10") == ("dataset", "cifar10")
    assert parse_override("x=a=b") == ("x", "a=b")
    for bad in ("lr", "=3"):
        with pytest.raises(ValueError, match="key=value"):
            parse_override(bad)


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="unknown experiment 'nope'; known: ckpt, fake, transfer"):
        run_experiment("nope")
    with pytest.raises(ValueError, match="scale"):
        run_experiment("fake", scale="huge")
    with pytest.raises(ValueError, match="seed"):
        run_experiment("fake", seed=-1)
    with pytest.raises(ValueError, match="device"):
        run_experiment("fake", device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            run_experiment("fake", device="cuda")
    assert runner.resolve_device("auto").type in ("cpu", "cuda")


def _broken(result):
    def run(config, ctx):
        return result
    return FakeExperiment("broken", "", {}, {}, run)


@pytest.mark.parametrize(
    "result, match",
    [
        ([1, 2], "must return a dict"),
        ({"summary": {}}, "'layers' must be a non-empty list"),
        ({"layers": []}, "'layers' must be a non-empty list"),
        ({"layers": [{"layer": 0, "compression": 1.0, "discrimination": 0.0, "nc1": 1.0}]},
         r"missing \['numerical_rank'\]"),
        ({"layers": [{"layer": "0", "compression": 1, "discrimination": 0, "nc1": 1, "numerical_rank": 2}]}, "integer"),
        ({"layers": [{"layer": 0, "compression": "big", "discrimination": 0, "nc1": 1, "numerical_rank": 2}]},
         "compression"),
        ({"layers": [{"layer": 0, "compression": 1, "discrimination": 0, "nc1": 1, "numerical_rank": 2.5}]},
         "numerical_rank"),
        ({"layers": [{"layer": 0, "compression": 1, "discrimination": 0, "nc1": 1, "numerical_rank": 2,
                      "probe_accuracy": 97.0}]}, r"probe_accuracy.*\[0, 1\]"),
        ({"layers": _layers(), "test_layers": []}, "'test_layers' must be a non-empty list"),
        ({"layers": _layers(), "test_layers": [{"layer": 0, "compression": 1.0}]}, r"test_layers\[0\] is missing"),
        ({"layers": _layers(), "test_layers": _layers(2)}, "same layers"),
        ({"layers": _layers(), "transfer_accuracy": []}, "transfer_accuracy"),
        ({"layers": _layers(), "transfer_accuracy": [0.5, 1.5]}, r"transfer_accuracy\[1\]"),
        ({"layers": _layers(), "arrays": {"x": np.array([object()])}}, "numeric array"),
        ({"layers": _layers(), "extra": object()}, "not JSON-serialisable"),
    ],
)
def test_contract_violations_are_reported(monkeypatch, result, match):
    monkeypatch.setattr(runner, "experiment_registry", lambda: {"broken": _broken(result)})
    with pytest.raises(ValueError, match=f"experiment 'broken' broke the result contract.*{match}"):
        run_experiment("broken", device="cpu", use_cache=False)


def test_transfer_runs_must_report_transfer_accuracy(monkeypatch):
    res = run_experiment("transfer", device="cpu", use_cache=False)
    assert res["transfer_accuracy"] == [0.6, 0.65, 0.7]
    with pytest.raises(ValueError, match="transfer_accuracy"):
        validate_result({"layers": _layers()}, "transfer", require_transfer=True)
    validate_result({"layers": _layers(), "rank_none": None}, "x")
    validate_result({"layers": _layers(), "test_layers": _layers(probe=False)}, "x")
    validate_result({"layers": [{**_layers()[0], "nc1": None, "numerical_rank": None, "probe_accuracy": None}]}, "x")


def test_run_context_progress_and_checkpoint_paths(tmp_path, capsys):
    ctx = RunContext()
    data = [1, 2, 3]
    assert ctx.progress_bar(data) is data and ctx.checkpoint_path("x") is None
    ctx = RunContext(progress=True, checkpoint_dir=tmp_path / "ck")
    assert list(ctx.progress_bar(iter(data), total=3, desc="epochs")) == data
    assert "epochs" in capsys.readouterr().err
    p = ctx.checkpoint_path("hybrid/L=5 head 2")
    assert p.parent == tmp_path / "ck" and p.parent.is_dir() and p.name == "hybrid_L_5_head_2.pt"
    with pytest.raises(ValueError, match="tag"):
        ctx.checkpoint_path("")


def test_interrupted_run_resumes_from_its_checkpoints(tmp_path):
    """A run killed mid-training resumes from the checkpoint under <out>/checkpoints and equals a clean run."""
    clean = run_experiment("ckpt", device="cpu", use_cache=False)
    overrides = {"crash_at": 5}
    with pytest.raises(KeyboardInterrupt):
        run_experiment("ckpt", device="cpu", out=tmp_path, overrides=overrides)
    ckpt_dirs = list((tmp_path / "checkpoints").iterdir())
    assert len(ckpt_dirs) == 1 and [p.name for p in ckpt_dirs[0].iterdir()] == ["main_model.pt"]
    assert not (tmp_path / "ckpt-book-seed0.json").exists()
    resumed = run_experiment("ckpt", device="cpu", out=tmp_path, overrides=overrides)
    assert CALLS[-1][1]["exists"] and resumed["summary"]["resumed_from"] == 4
    assert resumed["summary"]["losses"] == clean["summary"]["losses"]
    assert not (tmp_path / "checkpoints").exists()  # removed after success
    run_experiment("ckpt", device="cpu", out=tmp_path, overrides={"crash_at": 0, "epochs": 3}, keep_checkpoints=True)
    assert len(list((tmp_path / "checkpoints").iterdir())) == 1


def test_load_or_run_prefers_stored_results(tmp_path):
    res = load_or_run("fake", scale="paper")  # nothing stored: runs the book scale
    assert res["from_results"] is False and res["scale"] == "book" and CALLS[-1][1] == REGISTRY["fake"].book
    stored = run_experiment("fake", scale="paper", device="cpu", out=tmp_path / "results")
    n = len(CALLS)
    got = load_or_run("fake", scale="paper", results_dir=tmp_path / "results")
    assert len(CALLS) == n and got["from_results"] is True and got["scale"] == "paper"
    assert got["layers"] == stored["layers"] and np.array_equal(got["arrays"]["losses"], stored["arrays"]["losses"])
    assert got["results_path"].endswith("fake-paper-seed0.json")
    (tmp_path / "results" / "fake-paper-seed0.json").write_text('{"layers": []}')
    with pytest.raises(ValueError, match="broke the result contract"):
        load_or_run("fake", scale="paper", results_dir=tmp_path / "results")
    (tmp_path / "results" / "fake-paper-seed0.json").write_text("{oops")
    with pytest.raises(ValueError, match="cannot read result file"):
        load_or_run("fake", scale="paper", results_dir=tmp_path / "results")
    with pytest.raises(ValueError, match="unknown experiment"):
        load_or_run("nope")


def test_default_results_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PNC_RESULTS_DIR", str(tmp_path))
    assert runner.default_results_dir() == tmp_path
    monkeypatch.delenv("PNC_RESULTS_DIR")
    assert runner.default_results_dir().name == "results"


def test_cache_key_changes_when_the_code_changes(monkeypatch):
    run_experiment("fake", device="cpu")
    assert run_experiment("fake", device="cpu")["from_cache"] and len(CALLS) == 1
    monkeypatch.setattr(runner, "code_fingerprint", lambda run=None: "edited")
    assert not run_experiment("fake", device="cpu")["from_cache"] and len(CALLS) == 2
    monkeypatch.undo()
    fp = runner.code_fingerprint(_run_layerwise)
    assert len(fp) == 64 and fp == runner.code_fingerprint(_run_layerwise) != runner.code_fingerprint(None)
    hashed = {p.relative_to(Path(runner.__file__).parents[1]).as_posix() for p in runner.fingerprinted_files()}
    assert {"metrics.py", "train.py", "models.py", "book/experiments.py", "book/runner.py"} <= hashed  # results
    assert not hashed & {"plotting.py", "book/ledger.py", "book/widgets.py", "book/figures/hierarchy.py",
                         "book/grading.py", "book/cli.py", "book/laws.py",
                         "book/live.py"}  # views, the autograder, the command line, the site's explorers
    # a module left out must not feed a cached run: no hashed module imports the explorers' formulas or pages
    root = Path(runner.__file__).parents[1]
    for path in runner.fingerprinted_files():
        source = path.read_text()
        assert not re.search(r"from \.+ import .*\b(laws|live)\b|from (pnc\.book|\.)\.?(laws|live) import|"
                             r"import pnc\.book\.(laws|live)", source), path.relative_to(root)
