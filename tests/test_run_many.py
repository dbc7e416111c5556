"""Runs in parallel worker processes (pnc.book.runner.run_many, load_or_run_many) equal the same runs in-process."""

from __future__ import annotations

import numpy as np
import pytest

from pnc.book import runner

TINY = {"dataset": "digits", "n_per_class": 30, "width": 16, "epochs": 3, "batch_size": 32}
"""A book-scale hybrid made tiny: scikit-learn's digits (offline), 30 images per class, width 16, 3 epochs."""


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("PNC_CACHE_DIR", str(tmp_path / "cache"))  # spawned workers inherit the environment
    monkeypatch.setenv("PNC_RESULTS_DIR", str(tmp_path / "no-results"))


def _request(seed: int) -> dict:
    return {"name": "hybrid", "seed": seed, "device": "cpu", "overrides": {**TINY}}


def test_parallel_runs_equal_in_process_runs_in_request_order():
    parallel = runner.run_many([_request(1), _request(0)], workers=2)
    assert [r["seed"] for r in parallel] == [1, 0]
    for got in parallel:
        alone = runner.run_experiment(**_request(got["seed"]), use_cache=False)
        assert got["layers"] == alone["layers"] and got["summary"]["final_loss"] == alone["summary"]["final_loss"]
        assert np.array_equal(got["arrays"]["losses"], alone["arrays"]["losses"])
    assert parallel[0]["summary"]["final_loss"] != parallel[1]["summary"]["final_loss"]   # the seeds differ
    again = runner.run_many([_request(1), _request(0)], workers=2)   # the workers filled the cache
    assert all(r["from_cache"] for r in again)


def test_load_or_run_many_prefers_stored_results(tmp_path):
    stored = runner.run_experiment("hybrid", "paper", seed=3, device="cpu", out=tmp_path / "results",
                                   overrides={k: v for k, v in TINY.items() if k != "n_per_class"})
    got = runner.load_or_run_many([("hybrid", 3)], "paper", results_dir=tmp_path / "results", workers=1)
    assert got[0]["from_results"] and got[0]["layers"] == stored["layers"] and got[0]["scale"] == "paper"


@pytest.mark.parametrize(("requests", "workers", "message"), [
    ([], None, "non-empty list"),
    ([("hybrid", 0)], None, "must be a dict"),
    ([{"seed": 0}], None, "at least 'name'"),
    ([{"name": "hybrid", "epochs": 3}], None, "unknown run_experiment argument"),
    ([{"name": "nope"}], None, "unknown experiment"),
    ([_request(0)], 0, "workers must be an integer >= 1"),
])
def test_bad_requests_are_named(requests, workers, message):
    with pytest.raises(ValueError, match=message):
        runner.run_many(requests, workers=workers)


def test_bad_load_requests_and_worker_counts(monkeypatch):
    with pytest.raises(ValueError, match=r"\(name, seed\) pair"):
        runner.load_or_run_many([("hybrid",)])
    with pytest.raises(ValueError, match="seed must be"):
        runner.load_or_run_many([("hybrid", -1)])
    monkeypatch.setenv("PNC_WORKERS", "3")
    assert runner.default_workers() == 3
    monkeypatch.setenv("PNC_WORKERS", "two")
    with pytest.raises(ValueError, match="PNC_WORKERS"):
        runner.default_workers()
