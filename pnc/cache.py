"""Atomic file writes and a result cache keyed by the full configuration.

Everything written here goes to a temporary file in the destination folder first and is moved into place with
:func:`os.replace` (atomic on POSIX and Windows), so a process killed mid-write leaves either the old file or
no file, never a truncated one. Temporary files are named ``.<name>.<random>.tmp`` and removed on any error.

:class:`ResultCache` stores one JSON document (plus optional numpy arrays in an ``.npz`` next to it) per
configuration. The key is the SHA-256 of the canonical JSON of ``{"name", "config", "seed", "version"}``; the
entry records that key and the SHA-256 of its arrays file, so a corrupt entry (unreadable JSON, missing or
damaged arrays, a key or checksum that does not match) is detected, reported as a miss and recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ResultCache",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_npz",
    "canonical_json",
    "config_hash",
    "default_cache_dir",
    "load_npz",
    "sha256_file",
    "to_jsonable",
    "user_cache_dir",
]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once at import: os.umask can only be read by setting it


def user_cache_dir(app: str = "pnc") -> Path:
    """The platform's per-user cache folder for ``app`` (``~/.cache/pnc`` on Linux).

    Linux/BSD: ``$XDG_CACHE_HOME/app`` or ``~/.cache/app``; macOS: ``~/Library/Caches/app``;
    Windows: ``%LOCALAPPDATA%\\app\\Cache``. Nothing is created.
    """
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / app / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / app
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / app


def default_cache_dir() -> Path:
    """Folder of the result cache: ``$PNC_CACHE_DIR`` if set, else ``user_cache_dir()/results``."""
    env = os.environ.get("PNC_CACHE_DIR")
    return Path(env).expanduser() if env else user_cache_dir() / "results"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[Any]:
    """Context manager yielding a file object; on success the file appears at ``path`` atomically.

    The data go to a temporary file in the same folder, are flushed and fsynced, and the temporary file
    replaces ``path`` with :func:`os.replace`. On any exception (or a kill) ``path`` is untouched and the
    temporary file is removed (on a kill it may remain, under a ``.tmp`` name that no reader looks at).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars, arrays, tuples, paths and dataclass-free containers to plain JSON types.

    Non-finite floats are kept (Python's json writes ``NaN``/``Infinity``): a NaN metric is information.
    Raises ``ValueError`` for objects that have no JSON form.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise ValueError(f"JSON object keys must be strings, got {k!r}")
            out[k] = to_jsonable(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if type(obj).__module__.startswith("torch"):
        import torch

        if isinstance(obj, torch.Tensor):
            return to_jsonable(obj.detach().cpu().tolist())
        if isinstance(obj, (torch.device, torch.dtype)):
            return str(obj)
    raise ValueError(f"cannot convert {type(obj).__name__} to JSON: {obj!r}")


def canonical_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, ASCII; the basis of :func:`config_hash`."""
    return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def config_hash(name: str, config: Mapping[str, Any], seed: int, version: str | None = None) -> str:
    """SHA-256 (hex) of the canonical JSON of the name, configuration, seed and package version."""
    if version is None:
        from pnc import __version__ as version
    doc = {"name": name, "config": config, "seed": seed, "version": version}
    return hashlib.sha256(canonical_json(doc).encode("ascii")).hexdigest()


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` (converted with :func:`to_jsonable`) as indented JSON, atomically."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=True) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_npz(path: str | os.PathLike[str], arrays: Mapping[str, Any]) -> str:
    """Save numeric arrays to an ``.npz`` atomically; return the SHA-256 of the written file.

    Object arrays are refused (they would need pickle to read back).
    """
    clean: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"array names must be identifiers, got {key!r}")
        arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if arr.dtype == object:
            raise ValueError(f"array {key!r} has dtype object; only numeric arrays can be stored")
        clean[key] = arr
    buf = io.BytesIO()
    np.savez(buf, **clean)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def load_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` into memory, never unpickling (``allow_pickle=False``)."""
    with np.load(Path(path), allow_pickle=False) as data:
        out = {}
        for k in data.files:
            try:
                out[k] = data[k]
            except ValueError as err:  # numpy refuses an object array rather than unpickle it
                raise ValueError(f"{path}: array {k!r} holds Python objects (dtype object), which are never unpickled; "
                                 "save plain numeric arrays (atomic_write_npz refuses object arrays)") from err
        return out


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


class ResultCache:
    """A folder of results keyed by :func:`config_hash`.

    Each entry is ``<key>.json`` (``{"key", "name", "seed", "config", "version", "arrays_sha256", "result"}``)
    and, when the result has arrays, ``<key>.npz``. Arrays are written first and the JSON last, so an entry
    exists only once both are complete.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def key(self, name: str, config: Mapping[str, Any], seed: int, version: str | None = None) -> str:
        """The cache key of a configuration."""
        return config_hash(name, config, seed, version)

    def paths(self, key: str) -> tuple[Path, Path]:
        """``(json_path, npz_path)`` of an entry."""
        return self.root / f"{key}.json", self.root / f"{key}.npz"

    def get(
        self, name: str, config: Mapping[str, Any], seed: int, version: str | None = None
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """``(result, arrays)`` of a valid entry, or ``None`` if missing or corrupt (a warning says which)."""
        key = self.key(name, config, seed, version)
        json_path, npz_path = self.paths(key)
        if not json_path.exists():
            return None
        problem = None
        try:
            entry = json.loads(json_path.read_text(encoding="utf-8"))
            if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("result"), dict):
                problem = "its key or layout does not match"
            elif self.key(entry.get("name"), entry.get("config"), entry.get("seed"), entry.get("version")) != key:
                problem = "its stored configuration does not hash to its key"
        except (OSError, ValueError, TypeError) as exc:
            problem = f"its JSON cannot be read ({exc})"
        arrays: dict[str, np.ndarray] = {}
        if problem is None and entry.get("arrays_sha256") is not None:
            if not npz_path.exists():
                problem = "its arrays file is missing"
            elif sha256_file(npz_path) != entry["arrays_sha256"]:
                problem = "its arrays file does not match its checksum"
            else:
                try:
                    arrays = load_npz(npz_path)
                except (OSError, ValueError) as exc:
                    problem = f"its arrays cannot be read ({exc})"
        if problem is not None:
            warnings.warn(f"ignoring corrupt cache entry {json_path}: {problem}; it will be recomputed", stacklevel=2)
            return None
        return entry["result"], arrays

    def put(
        self,
        name: str,
        config: Mapping[str, Any],
        seed: int,
        result: Mapping[str, Any],
        arrays: Mapping[str, Any] | None = None,
        version: str | None = None,
    ) -> str:
        """Store an entry atomically (arrays first, JSON last) and return its key."""
        if version is None:
            from pnc import __version__ as version
        key = self.key(name, config, seed, version)
        json_path, npz_path = self.paths(key)
        digest = atomic_write_npz(npz_path, arrays) if arrays else None
        entry = {
            "key": key,
            "name": name,
            "seed": seed,
            "config": to_jsonable(config),
            "version": version,
            "arrays_sha256": digest,
            "result": to_jsonable(result),
        }
        atomic_write_json(json_path, entry)
        return key

    def get_or_compute(
        self,
        name: str,
        config: Mapping[str, Any],
        seed: int,
        compute: Callable[[], tuple[Mapping[str, Any], Mapping[str, Any] | None]],
        version: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, np.ndarray], bool]:
        """Return ``(result, arrays, hit)``; on a miss (or a corrupt entry) call ``compute()`` and store it."""
        found = self.get(name, config, seed, version)
        if found is not None:
            return found[0], found[1], True
        result, arrays = compute()
        self.put(name, config, seed, result, arrays, version)
        stored = json.loads(json.dumps(to_jsonable(result), allow_nan=True))
        loaded = {
            k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)) for k, v in (arrays or {}).items()
        }
        return stored, loaded, False

