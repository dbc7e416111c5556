"""Run the named experiments of :mod:`pnc.book.experiments` reproducibly, with a result cache and result files.

:func:`run_experiment` resolves a configuration (the experiment's ``book`` or ``paper`` settings plus
overrides), seeds ``random``, NumPy and PyTorch, runs the experiment with a :class:`RunContext` (device,
progress bars, checkpoint folder), checks the result against the JSON contract (:func:`validate_result`),
adds the metadata (``name``, ``scale``, ``seed``, ``config``, ``pnc_version``, ``device``, ``timings``) and
writes ``<out>/<name>-<scale>-seed<seed>.json`` (plus ``.npz`` arrays) atomically. Results are cached in a
:class:`pnc.cache.ResultCache` keyed by the full configuration, so a rerun is instant and a corrupt entry is
recomputed.

:func:`load_or_run` is what a chapter calls: stored results from a results folder when present (paper-scale
runs made with ``python -m pnc.book run NAME --scale paper``), else a book-scale run on the spot.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import random
import re
import shutil
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pnc._checks import check_seed as _check_seed
from pnc.book.context import RunContext
from pnc.cache import ResultCache, atomic_write_json, atomic_write_npz, config_hash, load_npz, to_jsonable

__all__ = [
    "experiment_registry",
    "SCALES",
    "RunContext",
    "apply_overrides",
    "code_fingerprint",
    "default_results_dir",
    "default_workers",
    "list_experiments",
    "load_or_run",
    "load_or_run_many",
    "load_result",
    "resolve_device",
    "result_path",
    "run_experiment",
    "run_many",
    "validate_result",
]

SCALES = ("book", "paper")
LAYER_KEYS = ("layer", "compression", "discrimination", "nc1", "numerical_rank")
"""Keys every entry of a result's ``layers`` list must have (``probe_accuracy`` too where probes ran)."""


def experiment_registry() -> Mapping[str, Any]:
    """The experiment registry (tests replace this function)."""
    from pnc.book.experiments import EXPERIMENTS

    return EXPERIMENTS


def list_experiments() -> dict[str, str]:
    """``{name: description}`` of every registered experiment."""
    return {name: getattr(exp, "description", "") for name, exp in experiment_registry().items()}


def _get(name: str) -> Any:
    registry = experiment_registry()
    if name not in registry:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]


def _check_scale(scale: object) -> str:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return str(scale)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a torch device.

    Raises ``ValueError`` for an unknown name or a CUDA device on a machine without one.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif isinstance(device, str) and re.fullmatch(r"cpu|cuda(:\d+)?", device):
        dev = torch.device(device)
    else:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but PyTorch sees no CUDA GPU; use --device cpu or auto")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be a CPU or CUDA device, got {dev}")
    return dev


def _compatible(default: Any, value: Any) -> Any:
    """``value`` converted to the type of ``default`` where that is lossless, else ``ValueError``."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise TypeError("a boolean (true/false)")
    if isinstance(default, int):
        if isinstance(value, bool):
            raise TypeError("an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError("an integer")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError("a number")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise TypeError("a string")
    if isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return list(value)
        raise TypeError("a list")
    return value


def apply_overrides(config: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``config`` with ``overrides`` applied; unknown keys or values of the wrong type raise
    ``ValueError`` naming them (an integer is accepted for a float option, ``null`` for any option)."""
    out = dict(config)
    for key, value in (overrides or {}).items():
        if key not in out:
            raise ValueError(f"unknown option {key!r} for this experiment; known options: {', '.join(sorted(out))}")
        try:
            out[key] = _compatible(out[key], value)
        except TypeError as exc:
            raise ValueError(f"option {key!r} must be {exc.args[0]} (like its default {out[key]!r}), got {value!r}") \
                from None
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` from the command line: the value as JSON when it parses (numbers, true/false,
    null, lists), else as a plain string."""
    if "=" not in text:
        raise ValueError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ValueError(f"--set expects key=value with a non-empty key, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _check_layer_rows(layers: Any, field: str, where: str) -> None:
    """The contract of one layer table (``layers`` or ``test_layers``); ``ValueError`` saying what is wrong."""
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"{where}: {field!r} must be a non-empty list, got {type(layers).__name__}")
    for i, row in enumerate(layers):
        if not isinstance(row, Mapping):
            raise ValueError(f"{where}: {field}[{i}] must be a dict")
        missing = [k for k in LAYER_KEYS if k not in row]
        if missing:
            raise ValueError(f"{where}: {field}[{i}] is missing {missing}")
        if not isinstance(row["layer"], (int, np.integer)) or isinstance(row["layer"], bool):
            raise ValueError(f"{where}: {field}[{i}]['layer'] must be an integer, got {row['layer']!r}")
        for key in ("compression", "discrimination", "nc1"):
            if row[key] is not None and not _is_number(row[key]):
                raise ValueError(f"{where}: {field}[{i}][{key!r}] must be a number or None, got {row[key]!r}")
        rank = row["numerical_rank"]
        if rank is not None and not (_is_number(rank) and float(rank).is_integer()):
            raise ValueError(f"{where}: {field}[{i}]['numerical_rank'] must be an integer or None, got {rank!r}")
        acc = row.get("probe_accuracy")
        if acc is not None and not (_is_number(acc) and 0.0 <= float(acc) <= 1.0):
            raise ValueError(f"{where}: {field}[{i}]['probe_accuracy'] must be a number in [0, 1], got {acc!r}")


def validate_result(result: Any, name: str = "experiment", require_transfer: bool = False) -> None:
    """Check the result contract; raise ``ValueError`` saying what is wrong.

    ``result["layers"]`` is a non-empty list of dicts, each with ``layer`` (an integer), ``compression``,
    ``discrimination``, ``nc1`` (numbers or ``None``), ``numerical_rank`` (an integer or ``None``) and optionally
    ``probe_accuracy`` (a number in [0, 1] or ``None``); ``test_layers``, when present, is a table of the same
    layers under the same contract (measured on the test split); ``transfer_accuracy``, when present (required with
    ``require_transfer``), is a non-empty list of numbers in [0, 1] indexed by the number of head layers 1, 2, ...
    ``arrays``, when present, maps identifiers to numeric arrays.
    """
    where = f"experiment {name!r} broke the result contract"
    if not isinstance(result, Mapping):
        raise ValueError(f"{where}: run() must return a dict, got {type(result).__name__}")
    _check_layer_rows(result.get("layers"), "layers", where)
    if "test_layers" in result:  # the same table on the test split (hybrid, mlp)
        _check_layer_rows(result["test_layers"], "test_layers", where)
        if [r["layer"] for r in result["test_layers"]] != [r["layer"] for r in result["layers"]]:
            raise ValueError(f"{where}: 'test_layers' must list the same layers as 'layers'")
    if require_transfer or "transfer_accuracy" in result:
        accs = result.get("transfer_accuracy")
        if not isinstance(accs, list) or not accs:
            raise ValueError(f"{where}: 'transfer_accuracy' must be a non-empty list (index = head layers - 1)")
        for i, acc in enumerate(accs):
            if not (_is_number(acc) and 0.0 <= float(acc) <= 1.0):
                raise ValueError(f"{where}: transfer_accuracy[{i}] must be a number in [0, 1], got {acc!r}")
    arrays = result.get("arrays")
    if arrays is not None:
        if not isinstance(arrays, Mapping):
            raise ValueError(f"{where}: 'arrays' must be a dict of numpy arrays")
        for key, arr in arrays.items():
            a = arr.detach().cpu().numpy() if hasattr(arr, "detach") else np.asarray(arr)
            if not (isinstance(key, str) and key.isidentifier()) or a.dtype == object:
                raise ValueError(f"{where}: arrays[{key!r}] must be a numeric array under an identifier name")
    try:
        to_jsonable({k: v for k, v in result.items() if k != "arrays"})
    except ValueError as exc:
        raise ValueError(f"{where}: the result is not JSON-serialisable ({exc})") from None


def result_path(out: str | os.PathLike[str], name: str, scale: str, seed: int) -> Path:
    """``<out>/<name>-<scale>-seed<seed>.json``."""
    return Path(out) / f"{name}-{scale}-seed{seed}.json"


PRESENTATION_MODULES = frozenset({"plotting.py", "book/widgets.py", "book/tables.py", "book/ledger.py",
                                  "book/export.py", "book/publish.py", "book/grading.py", "book/cli.py",
                                  "book/laws.py", "book/live.py"})
"""Modules (paths under ``pnc/``) that only show, grade or launch results, left out of :func:`code_fingerprint` with
every module of ``pnc/book/figures/``: editing a figure, a table, the autograder, the command line, or the closed
forms the site's explorers compute (``book/laws.py``, ``book/live.py``; no run imports them, tests/test_runner.py)
does not invalidate the cached runs."""

_PACKAGE_DIGEST: list[str] = []


def fingerprinted_files() -> list[Path]:
    """The source files of the ``pnc`` package that :func:`code_fingerprint` hashes, in order: every ``.py`` file
    but :data:`PRESENTATION_MODULES` and ``pnc/book/figures/``."""
    root = Path(__file__).resolve().parent.parent
    return [path for path in sorted(root.rglob("*.py"))
            if path.relative_to(root).as_posix() not in PRESENTATION_MODULES
            and not path.relative_to(root).as_posix().startswith("book/figures/")]


def code_fingerprint(run: Any = None) -> str:
    """SHA-256 of the source of the ``pnc`` package (every ``.py`` file but the presentation modules,
    :data:`PRESENTATION_MODULES` and ``pnc/book/figures/``) and of the file defining ``run``.

    Part of the cache key, so that editing an experiment or a metric never serves a stale cached result.
    """
    if not _PACKAGE_DIGEST:
        h = hashlib.sha256()
        root = Path(__file__).resolve().parent.parent  # the pnc package
        for path in fingerprinted_files():
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
        _PACKAGE_DIGEST.append(h.hexdigest())
    h = hashlib.sha256(_PACKAGE_DIGEST[0].encode())
    try:
        source = inspect.getsourcefile(run) if run is not None else None
    except TypeError:
        source = None
    if source and Path(source).exists():
        h.update(Path(source).read_bytes())
    return h.hexdigest()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - experiments may use the legacy global generator
    torch.manual_seed(seed)  # also seeds every CUDA device


def _write(path: Path, doc: dict[str, Any], arrays: Mapping[str, Any]) -> None:
    if arrays:
        npz = path.with_suffix(".npz")
        atomic_write_npz(npz, arrays)
        doc["arrays_file"] = npz.name
    atomic_write_json(path, doc)


def run_experiment(
    name: str,
    scale: str = "book",
    seed: int = 0,
    device: str | torch.device = "auto",
    out: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    progress: bool = False,
    use_cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    keep_checkpoints: bool = False,
) -> dict[str, Any]:
    """Run experiment ``name`` at ``scale`` (``"book"`` or ``"paper"``) and return its result dict.

    The configuration is the experiment's ``book``/``paper`` dict with ``overrides`` applied
    (:func:`apply_overrides`). The result (validated by :func:`validate_result`) gains ``name``, ``scale``,
    ``seed``, ``config``, ``pnc_version``, ``torch_version``, ``device``, ``timings`` (wall seconds; the original
    run's on a cache hit), ``created`` (UTC), ``cache_key`` and ``from_cache``; its numpy arrays stay under
    ``"arrays"``. With ``out``, writes ``<out>/<name>-<scale>-seed<seed>.json`` (and ``.npz`` for the arrays)
    atomically and keeps training checkpoints under ``<out>/checkpoints/`` while the run lasts (so an
    interrupted run resumes; removed after success unless ``keep_checkpoints``). The cache (folder
    ``cache_dir``, default :func:`pnc.cache.default_cache_dir`) is keyed by name, scale, config, seed, device
    type, package version and :func:`code_fingerprint` (so edited code never reuses an old result).
    """
    from pnc import __version__

    exp = _get(name)
    scale = _check_scale(scale)
    seed = _check_seed(seed)
    dev = resolve_device(device)
    base = getattr(exp, scale)
    if not isinstance(base, Mapping):
        raise ValueError(f"experiment {name!r} has no {scale!r} configuration dict")
    config = apply_overrides(base, overrides)
    key_config = {"scale": scale, "device": dev.type, "config": config, "code": code_fingerprint(exp.run)}
    cache = ResultCache(cache_dir) if use_cache else None
    key = config_hash(name, key_config, seed, __version__)

    hit = cache.get(name, key_config, seed, __version__) if cache is not None else None
    if hit is not None:
        result, arrays = hit
        result = dict(result)
        result["from_cache"] = True
    else:
        ckpt_dir = None
        if out is not None:
            ckpt_dir = Path(out) / "checkpoints" / f"{name}-{scale}-seed{seed}-{key[:12]}"
        ctx = RunContext(seed=seed, device=dev, scale=scale, progress=progress, checkpoint_dir=ckpt_dir)
        _seed_everything(seed)
        start = time.perf_counter()
        raw = exp.run(dict(config), ctx)
        wall = time.perf_counter() - start
        validate_result(raw, name, require_transfer=(name == "transfer"))
        raw = dict(raw)
        arrays = {
            k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
            for k, v in (raw.pop("arrays", None) or {}).items()
        }
        timings = dict(raw.pop("timings", None) or {})
        timings["total"] = wall
        result = to_jsonable(raw)
        result.update(
            name=name,
            scale=scale,
            seed=seed,
            config=to_jsonable(config),
            pnc_version=__version__,
            torch_version=torch.__version__,
            device=str(dev),
            timings=timings,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            cache_key=key,
        )
        if cache is not None:
            cache.put(name, key_config, seed, result, arrays, __version__)
        result["from_cache"] = False
        if ckpt_dir is not None and not keep_checkpoints and ckpt_dir.exists():
            shutil.rmtree(ckpt_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                ckpt_dir.parent.rmdir()  # only if no other run's checkpoints are there
    if out is not None:
        path = result_path(out, name, scale, seed)
        _write(path, {k: v for k, v in result.items() if k != "from_cache"}, arrays)
        result["results_path"] = str(path)
    result["arrays"] = arrays
    return result


def default_results_dir() -> Path:
    """``$PNC_RESULTS_DIR`` if set, else the ``results`` folder at the repository root (next to ``pnc/``)."""
    env = os.environ.get("PNC_RESULTS_DIR")
    return Path(env).expanduser() if env else Path(__file__).resolve().parent.parent / "results"


def load_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a result JSON written by :func:`run_experiment` (arrays from its ``.npz`` under ``"arrays"``).

    Raises ``ValueError`` if the file is unreadable or breaks the result contract.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read result file {path}: {exc}") from exc
    name = doc.get("name", path.stem) if isinstance(doc, dict) else path.stem
    validate_result(doc, name, require_transfer=(name == "transfer"))
    arrays: dict[str, np.ndarray] = {}
    if doc.get("arrays_file"):
        npz = path.parent / doc["arrays_file"]
        try:
            arrays = load_npz(npz)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the arrays of {path} ({npz}): {exc}") from exc
    doc["arrays"] = arrays
    return doc


def load_or_run(
    name: str,
    scale: str = "book",
    seed: int = 0,
    results_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Stored results of ``name`` at ``scale`` when ``<results_dir>/<name>-<scale>-seed<seed>.json`` exists
    (returned with ``from_results=True`` and ``results_path``), else a fresh **book-scale** run on the CPU
    (``from_results=False``; cached, see :func:`run_experiment`).

    ``results_dir`` defaults to :func:`default_results_dir`. A chapter calls ``load_or_run(name, "paper")`` to
    show paper-scale results when someone has produced them with ``python -m pnc.book run NAME --scale paper --out
    results`` and its own book-scale run otherwise; ``result["scale"]`` says which it got.
    """
    _get(name)
    scale = _check_scale(scale)
    seed = _check_seed(seed)
    folder = Path(results_dir) if results_dir is not None else default_results_dir()
    path = result_path(folder, name, scale, seed)
    if path.exists():
        result = load_result(path)
        result["from_results"] = True
        result["results_path"] = str(path)
        return result
    result = run_experiment(name, "book", seed=seed, device="cpu", use_cache=use_cache, progress=progress)
    result["from_results"] = False
    return result




def _run_job(kwargs: dict[str, Any]) -> dict[str, Any]:
    """One :func:`run_experiment` call in a worker process of :func:`run_many`."""
    return run_experiment(**kwargs)


def default_workers() -> int:
    """How many processes :func:`run_many` starts: ``$PNC_WORKERS`` if set, else the CPU cores this process may use."""
    env = os.environ.get("PNC_WORKERS")
    if env:
        try:
            workers = int(env)
        except ValueError:
            raise ValueError(f"PNC_WORKERS must be an integer >= 1, got {env!r}") from None
        if workers < 1:
            raise ValueError(f"PNC_WORKERS must be an integer >= 1, got {env!r}")
        return workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_many(requests: list[Mapping[str, Any]], workers: int | None = None) -> list[dict[str, Any]]:
    """:func:`run_experiment` for several requests (each a dict of its keyword arguments), in that order, run in
    ``workers`` processes.

    The book-scale networks train on one thread each (their ``cpu_threads``), so independent runs in separate
    processes use every core; a run gives the same numbers in a worker as in this process (each run seeds itself
    and trains on one thread). Cached runs return at once. ``workers`` defaults to :func:`default_workers`; with
    one worker, or one request, everything runs in this process.
    """
    if not isinstance(requests, (list, tuple)) or not requests:
        raise ValueError("requests must be a non-empty list of dicts of run_experiment's arguments")
    allowed = set(inspect.signature(run_experiment).parameters)
    jobs = []
    for req in requests:
        if not isinstance(req, Mapping) or "name" not in req:
            raise ValueError(f"each request must be a dict with at least 'name', got {req!r}")
        unknown = sorted(set(req) - allowed)
        if unknown:
            raise ValueError(f"unknown run_experiment argument(s) {unknown}; known: {sorted(allowed)}")
        _get(req["name"])
        jobs.append(dict(req))
    n = default_workers() if workers is None else workers
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    n = min(n, len(jobs))
    if n == 1:
        return [_run_job(job) for job in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: a fresh interpreter per worker (fork would copy torch's thread pools and a notebook kernel's state)
    with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_run_job, jobs))


def load_or_run_many(
    requests: list[tuple[str, int]],
    scale: str = "book",
    results_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    workers: int | None = None,
) -> list[dict[str, Any]]:
    """:func:`load_or_run` for several ``(name, seed)`` pairs, in that order: stored results where the results folder
    has them, the others run as book-scale runs in parallel processes (:func:`run_many`)."""
    if not isinstance(requests, (list, tuple)) or not requests:
        raise ValueError("requests must be a non-empty list of (name, seed) pairs")
    scale = _check_scale(scale)
    folder = Path(results_dir) if results_dir is not None else default_results_dir()
    out: list[dict[str, Any] | None] = []
    missing: list[tuple[int, dict[str, Any]]] = []
    for req in requests:
        if not isinstance(req, (list, tuple)) or len(req) != 2:
            raise ValueError(f"each request must be a (name, seed) pair, got {req!r}")
        name, seed = req[0], _check_seed(req[1])
        _get(name)
        path = result_path(folder, name, scale, seed)
        if path.exists():
            out.append(load_or_run(name, scale, seed, results_dir=folder, use_cache=use_cache))
        else:
            missing.append((len(out), {"name": name, "scale": "book", "seed": seed, "device": "cpu",
                                       "use_cache": use_cache}))
            out.append(None)
    if missing:
        for (i, _), result in zip(missing, run_many([job for _, job in missing], workers), strict=True):
            result["from_results"] = False
            out[i] = result
    return [r for r in out if r is not None]
