"""Tests for pnc.cache: atomic writes, canonical hashing, the result cache and its corruption handling."""

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from pnc.cache import (
    ResultCache,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_npz,
    canonical_json,
    config_hash,
    default_cache_dir,
    load_npz,
    sha256_file,
    to_jsonable,
    user_cache_dir,
)

CONFIG = {"width": 64, "lr": 0.01, "layers": [1, 2], "dataset": "digits"}


def test_atomic_write_replaces_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]


def test_atomic_write_failure_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "f.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b'{"a": 2, "b": [1, 2')  # half a document
        raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_atomic_write_gives_umask_permissions_and_checks_mode(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    with pytest.raises(ValueError, match="mode"), atomic_write(target, "a"):
        pass


def test_process_killed_mid_write_leaves_no_corrupt_file(tmp_path):
    """A process SIGKILLed while writing (after half the data) never exposes a partial file."""
    target = tmp_path / "result.json"
    atomic_write_json(target, {"old": True})
    script = textwrap.dedent(
        f"""
        import os, signal
        from pnc.cache import atomic_write
        with atomic_write({str(target)!r}) as fh:
            fh.write(b'{{"new": [' + b'1,' * 100000)
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9
    assert json.loads(target.read_text()) == {"old": True}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "result.json"]
    assert all(name.startswith(".result.json.") and name.endswith(".tmp") for name in leftovers)


def test_canonical_json_and_config_hash():
    assert canonical_json({"b": 1, "a": [1.5, None]}) == '{"a":[1.5,null],"b":1}'
    h = config_hash("hybrid", CONFIG, 0, "1.0")
    assert len(h) == 64
    assert h == config_hash("hybrid", dict(reversed(list(CONFIG.items()))), 0, "1.0")  # key order irrelevant
    assert h == config_hash("hybrid", {**CONFIG, "width": np.int64(64)}, 0, "1.0")  # numpy scalars canonical
    others = [
        config_hash("mlp", CONFIG, 0, "1.0"),
        config_hash("hybrid", CONFIG, 1, "1.0"),
        config_hash("hybrid", CONFIG, 0, "1.1"),
        config_hash("hybrid", {**CONFIG, "lr": 0.02}, 0, "1.0"),
    ]
    assert len({h, *others}) == 5


def test_to_jsonable_converts_numpy_torch_paths_and_rejects_objects():
    out = to_jsonable({"a": np.float32(0.5), "b": np.arange(3), "c": torch.tensor([1.0, 2.0]), "d": (1, 2),
                       "e": Path("x/y"), "f": torch.device("cpu"), "g": np.bool_(True), "h": float("nan")})
    assert out["a"] == 0.5 and out["b"] == [0, 1, 2] and out["c"] == [1.0, 2.0] and out["d"] == [1, 2]
    assert out["e"] == "x/y" and out["f"] == "cpu" and out["g"] is True and np.isnan(out["h"])
    with pytest.raises(ValueError, match="cannot convert"):
        to_jsonable({"x": object()})
    with pytest.raises(ValueError, match="keys must be strings"):
        to_jsonable({1: 2})


def test_npz_round_trip_never_pickles(tmp_path):
    digest = atomic_write_npz(tmp_path / "a.npz", {"x": np.arange(4.0), "t": torch.ones(2, 2)})
    assert digest == sha256_file(tmp_path / "a.npz")
    arrays = load_npz(tmp_path / "a.npz")
    assert np.array_equal(arrays["x"], np.arange(4.0)) and arrays["t"].shape == (2, 2)
    with pytest.raises(ValueError, match="dtype object"):
        atomic_write_npz(tmp_path / "b.npz", {"x": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="identifiers"):
        atomic_write_npz(tmp_path / "b.npz", {"not ok": np.zeros(1)})
    np.savez(tmp_path / "evil.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"evil\.npz: array 'x' holds Python objects \(dtype object\)"):
        load_npz(tmp_path / "evil.npz")


def test_default_dirs_follow_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PNC_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("PNC_CACHE_DIR")
    assert default_cache_dir() == user_cache_dir() / "results"
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert user_cache_dir() == tmp_path / "xdg" / "pnc"
    assert ResultCache(tmp_path / "r").root == tmp_path / "r"


def test_result_cache_round_trip_and_miss(tmp_path):
    cache = ResultCache(tmp_path)
    assert cache.get("hybrid", CONFIG, 0) is None
    key = cache.put("hybrid", CONFIG, 0, {"layers": [{"c": 1.0}]}, {"losses": np.linspace(1, 0, 5)})
    result, arrays = cache.get("hybrid", CONFIG, 0)
    assert result == {"layers": [{"c": 1.0}]} and np.allclose(arrays["losses"], np.linspace(1, 0, 5))
    assert cache.get("hybrid", CONFIG, 1) is None and cache.get("hybrid", {**CONFIG, "lr": 0.1}, 0) is None
    json_path, npz_path = cache.paths(key)
    assert json_path.exists() and npz_path.exists()
    cache.put("mlp", CONFIG, 0, {"x": 1})  # no arrays -> no npz
    assert not cache.paths(cache.key("mlp", CONFIG, 0))[1].exists()
    assert cache.get("mlp", CONFIG, 0) == ({"x": 1}, {})


def _corrupt_json(json_path, npz_path):
    json_path.write_text('{"key": "abc", "resu')


def _wrong_key(json_path, npz_path):
    doc = json.loads(json_path.read_text())
    doc["key"] = "0" * 64
    json_path.write_text(json.dumps(doc))


def _tampered_config(json_path, npz_path):
    doc = json.loads(json_path.read_text())
    doc["config"]["width"] = 65  # the stored config no longer hashes to the key (file name)
    json_path.write_text(json.dumps(doc))


def _missing_arrays(json_path, npz_path):
    npz_path.unlink()


def _damaged_arrays(json_path, npz_path):
    data = bytearray(npz_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz_path.write_bytes(bytes(data))


def _not_a_dict(json_path, npz_path):
    json_path.write_text("[1, 2, 3]")


@pytest.mark.parametrize("damage", [_corrupt_json, _wrong_key, _tampered_config, _missing_arrays, _damaged_arrays,
                                    _not_a_dict])
def test_corrupt_entry_is_detected_and_recomputed(tmp_path, damage):
    cache = ResultCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"value": 3.0}, {"a": np.arange(3)}

    first, arrays, hit = cache.get_or_compute("hybrid", CONFIG, 0, compute)
    assert not hit and first == {"value": 3.0} and calls == [1]
    again = cache.get_or_compute("hybrid", CONFIG, 0, compute)
    assert again[2] and calls == [1]
    damage(*cache.paths(cache.key("hybrid", CONFIG, 0)))
    with pytest.warns(UserWarning, match="corrupt cache entry"):
        result, arrays, hit = cache.get_or_compute("hybrid", CONFIG, 0, compute)
    assert not hit and calls == [1, 1] and result == {"value": 3.0} and np.array_equal(arrays["a"], np.arange(3))
    assert cache.get("hybrid", CONFIG, 0)[0] == {"value": 3.0}  # repaired


def test_crash_between_arrays_and_json_leaves_no_entry(tmp_path, monkeypatch):
    cache = ResultCache(tmp_path)
    import pnc.cache as mod

    def die(path, obj):
        raise KeyboardInterrupt

    monkeypatch.setattr(mod, "atomic_write_json", die)
    with pytest.raises(KeyboardInterrupt):
        cache.put("hybrid", CONFIG, 0, {"v": 1}, {"a": np.zeros(2)})
    monkeypatch.undo()
    assert cache.get("hybrid", CONFIG, 0) is None  # arrays alone are not an entry
