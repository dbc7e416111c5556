"""Checkpointing in pnc.train: atomic saves, weights_only loads, bit-for-bit resume."""

import subprocess
import sys
import textwrap

import pytest
import torch

import pnc.cache
from pnc.data import gaussian_mixture
from pnc.models import MLP, DeepLinearNetwork
from pnc.train import TrainConfig, load_checkpoint, train

SGD = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3, epochs=12, batch_size=8, seed=3,
                  record_every=4)


def _mlp():
    return MLP(10, 16, 3, depth=3, seed=1, dtype=torch.float64)  # BatchNorm: running stats must be restored


def _data():
    return gaussian_mixture(10, 3, 10, within_std=0.3, seed=0)


class Stop(Exception):
    pass


def _stop_at(k):
    def callback(epoch, loss):
        if epoch == k:
            raise Stop
    return callback


def _assert_same(m1, m2, r1, r2):
    for (n1, t1), (n2, t2) in zip(m1.state_dict().items(), m2.state_dict().items(), strict=True):
        assert n1 == n2 and torch.equal(t1, t2), n1
    assert r1.losses == r2.losses and r1.lrs == r2.lrs and r1.history == r2.history
    assert r1.epochs_run == r2.epochs_run and r1.converged == r2.converged


@pytest.mark.parametrize("stop", [5, 8])
def test_interrupted_and_resumed_sgd_run_equals_uninterrupted_run(tmp_path, stop):
    X, y = _data()
    ref_model = _mlp()
    ref = train(ref_model, X, y, SGD)

    ckpt = tmp_path / "run.pt"
    model = _mlp()
    with pytest.raises(Stop):
        train(model, X, y, SGD, checkpoint_path=ckpt, checkpoint_every=4, callback=_stop_at(stop))
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 4 * (stop // 4) and not state["finished"]
    # Global RNG drawn in between must not matter: the checkpoint restores it.
    torch.rand(7)
    fresh = _mlp()
    resumed = train(fresh, X, y, SGD, checkpoint_path=ckpt, checkpoint_every=4)
    assert resumed.resumed_from == 4 * (stop // 4)
    _assert_same(ref_model, fresh, ref, resumed)
    assert load_checkpoint(ckpt)["finished"]


def test_finished_checkpoint_restores_model_without_training(tmp_path):
    X, y = _data()
    ckpt = tmp_path / "run.pt"
    m1 = _mlp()
    r1 = train(m1, X, y, SGD, checkpoint_path=ckpt)
    calls = []
    m2 = _mlp()
    r2 = train(m2, X, y, SGD, checkpoint_path=ckpt, callback=lambda e, loss: calls.append(e))
    assert calls == [] and r2.resumed_from == SGD.epochs
    _assert_same(m1, m2, r1, r2)


def test_full_batch_gd_with_loss_tol_resumes_identically(tmp_path):
    X, y = gaussian_mixture(5, 3, 20, seed=1, dtype=torch.float64)
    cfg = TrainConfig(optimizer="gd", lr=0.05, epochs=60, loss_tol=0.05, check_every=5)
    ref_model = DeepLinearNetwork(20, 20, 3, depth=3, xi=1.0, seed=0)
    ref = train(ref_model, X, y, cfg)
    assert ref.converged and ref.epochs_run == 25  # stops early, after the interruption below
    model = DeepLinearNetwork(20, 20, 3, depth=3, xi=1.0, seed=0)
    ckpt = tmp_path / "gd.pt"
    with pytest.raises(Stop):
        train(model, X, y, cfg, checkpoint_path=ckpt, checkpoint_every=7, callback=_stop_at(15))
    fresh = DeepLinearNetwork(20, 20, 3, depth=3, xi=1.0, seed=0)
    resumed = train(fresh, X, y, cfg, checkpoint_path=ckpt, checkpoint_every=7)
    assert resumed.resumed_from == 14
    _assert_same(ref_model, fresh, ref, resumed)


def test_checkpoint_with_other_config_is_refused(tmp_path):
    X, y = _data()
    ckpt = tmp_path / "run.pt"
    train(_mlp(), X, y, SGD, checkpoint_path=ckpt)
    with pytest.raises(ValueError, match="different TrainConfig.*lr"):
        train(_mlp(), X, y, SGD.replace(lr=0.01), checkpoint_path=ckpt)


def test_crash_while_saving_keeps_previous_checkpoint(tmp_path, monkeypatch):
    X, y = _data()
    ckpt = tmp_path / "run.pt"
    with pytest.raises(Stop):
        train(_mlp(), X, y, SGD, checkpoint_path=ckpt, checkpoint_every=4, callback=_stop_at(5))
    before = ckpt.read_bytes()

    real = pnc.cache.atomic_write_bytes

    def crash_halfway(path, data):
        with pnc.cache.atomic_write(path) as fh:
            fh.write(data[: len(data) // 2])
            raise KeyboardInterrupt  # the process dies while writing

    monkeypatch.setattr(pnc.cache, "atomic_write_bytes", crash_halfway)
    with pytest.raises(KeyboardInterrupt):
        train(_mlp(), X, y, SGD, checkpoint_path=ckpt, checkpoint_every=4)
    monkeypatch.setattr(pnc.cache, "atomic_write_bytes", real)
    assert ckpt.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]  # no temporary file left behind
    assert load_checkpoint(ckpt)["epoch"] == 4


def test_corrupt_or_foreign_checkpoint_raises_value_error(tmp_path):
    X, y = _data()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        train(_mlp(), X, y, SGD, checkpoint_path=bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="not a pnc.train checkpoint"):
        load_checkpoint(foreign)


def test_checkpoint_loading_refuses_arbitrary_pickles(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": 1, "payload": _Payload()}, evil)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(evil)


class _Payload:
    pass


def test_bad_checkpoint_arguments(tmp_path):
    X, y = _data()
    with pytest.raises(ValueError, match="checkpoint_every"):
        train(_mlp(), X, y, SGD, checkpoint_path=tmp_path / "c.pt", checkpoint_every=0)
    with pytest.raises(ValueError, match="callback"):
        train(_mlp(), X, y, SGD, callback=3)


def test_killed_process_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL a training subprocess mid-run, resume in another one, compare with an uninterrupted run."""
    script = textwrap.dedent(
        """
        import os, signal, sys, torch
        from pnc.data import gaussian_mixture
        from pnc.models import MLP
        from pnc.train import TrainConfig, train
        torch.set_num_threads(1)
        X, y = gaussian_mixture(10, 3, 10, within_std=0.3, seed=0)
        cfg = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, epochs=10, batch_size=8, seed=3)
        model = MLP(10, 16, 3, depth=3, seed=1, dtype=torch.float64)
        kill_at = int(sys.argv[2])
        def cb(epoch, loss):
            if epoch == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        ckpt = sys.argv[1] if sys.argv[1] != "-" else None
        r = train(model, X, y, cfg, checkpoint_path=ckpt, checkpoint_every=3, callback=cb)
        torch.save({k: v for k, v in model.state_dict().items()}, sys.argv[3])
        print(repr(r.losses))
        """
    )
    path = tmp_path / "script.py"
    path.write_text(script)
    ckpt = tmp_path / "k.pt"

    def run(ck, kill_at, out):
        return subprocess.run([sys.executable, str(path), ck, str(kill_at), str(out)], capture_output=True,
                              text=True, timeout=120)

    ref = run("-", -1, tmp_path / "ref.pt")
    assert ref.returncode == 0, ref.stderr
    killed = run(str(ckpt), 7, tmp_path / "never.pt")
    assert killed.returncode == -9 and not (tmp_path / "never.pt").exists()
    assert load_checkpoint(ckpt)["epoch"] == 6
    resumed = run(str(ckpt), -1, tmp_path / "resumed.pt")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == ref.stdout
    a = torch.load(tmp_path / "ref.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
