"""The command line: ``python -m pnc measure ... | list | run NAME ... | download DATASET | --version``.

``measure`` is the researcher's entry: a saved model (an importable factory + a ``weights_only`` checkpoint) and a
labelled ``.npz`` data file give the layerwise table, printed and optionally written as JSON. ``list`` and ``run``
drive the book's named experiments (they need the ``cli`` extra: ``pip install "pnc[cli]"``).

Exit codes: 0 success, 1 the run failed, 2 bad usage (unknown experiment, option or value).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["build_parser", "main"]


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m pnc``."""
    parser = argparse.ArgumentParser(
        prog="python -m pnc",
        description="Progressive neural collapse: run the book's experiments at book or paper scale.",
    )
    from pnc import __version__

    parser.add_argument("--version", action="version", version=f"pnc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    me = sub.add_parser("measure", help="measure a saved model layer by layer on a labelled .npz data file")
    me.add_argument("--model", required=True, metavar="MODULE:FACTORY",
                    help="importable factory that builds the (untrained) model, e.g. mypkg.nets:resnet18")
    me.add_argument("--factory-kwargs", default="{}", metavar="JSON", help="keyword arguments for the factory")
    me.add_argument("--weights", default=None, help="checkpoint with the state dict (loaded with weights_only=True)")
    me.add_argument("--data", required=True, help=".npz file with the inputs and the integer labels")
    me.add_argument("--x-key", default="x", help="array name of the inputs in --data (default: x)")
    me.add_argument("--y-key", default="y", help="array name of the labels in --data (default: y)")
    me.add_argument("--layers", nargs="+", default=None, help="layer names or patterns (default: the model's blocks)")
    me.add_argument("--metrics", nargs="+", default=None, help="metrics (default: pnc.report.DEFAULT_METRICS)")
    me.add_argument("--pool", default="mean", help="mean | flatten | first | last (default: mean)")
    me.add_argument("--batch-size", type=int, default=512)
    me.add_argument("--device", default="cpu")
    me.add_argument("--path", action="append", default=[], help="folder to import the model's module from "
                    "(repeatable; the current folder is always searched)")
    me.add_argument("--json", default=None, metavar="FILE", help="also write the table as JSON")

    sub.add_parser("list", help="list the named experiments and their settings")

    run = sub.add_parser("run", help="run one experiment and write its results as JSON (+ .npz arrays)")
    run.add_argument("name", help="experiment name (see `python -m pnc list`)")
    run.add_argument("--scale", choices=("book", "paper"), default="book",
                     help="book: offline data, minutes on a CPU; paper: the authors' settings (GPU, hours)")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--out", default="results", help="folder for <name>-<scale>-seed<seed>.json (default: results)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override one configuration option (value parsed as JSON if possible); repeatable")
    run.add_argument("--no-cache", action="store_true", help="ignore and do not write the result cache")
    run.add_argument("--cache-dir", default=None, help="result cache folder (default: $PNC_CACHE_DIR or user cache)")
    run.add_argument("--keep-checkpoints", action="store_true", help="keep training checkpoints after success")
    run.add_argument("--quiet", action="store_true", help="no progress bars")

    dl = sub.add_parser("download", help="download and verify a data set (mnist, fashion_mnist, cifar10)")
    dl.add_argument("dataset")
    dl.add_argument("--root", default=None, help="data folder (default: $PNC_DATA_DIR or the user cache folder)")
    return parser


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _cmd_list() -> int:
    from pnc.runner import _registry

    for name, exp in sorted(_registry().items()):
        print(f"{name}: {getattr(exp, 'description', '')}")
        for scale in ("book", "paper"):
            cfg = getattr(exp, scale, {}) or {}
            shown = ", ".join(f"{k}={v}" for k, v in cfg.items())
            print(f"    {scale}: {shown}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from pnc import runner

    if args.seed < 0:
        raise _UsageError(f"--seed must be >= 0, got {args.seed}")
    registry = runner._registry()
    if args.name not in registry:
        raise _UsageError(f"unknown experiment {args.name!r}; known: {', '.join(sorted(registry))}")
    try:
        overrides = dict(runner.parse_override(text) for text in args.overrides)
        exp = registry[args.name]
        runner.apply_overrides(getattr(exp, args.scale), overrides)
        runner.resolve_device(args.device)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    result = runner.run_experiment(
        args.name, scale=args.scale, seed=args.seed, device=args.device, out=args.out, overrides=overrides,
        progress=not args.quiet, use_cache=not args.no_cache, cache_dir=args.cache_dir,
        keep_checkpoints=args.keep_checkpoints,
    )
    cached = " (from the result cache)" if result.get("from_cache") else ""
    print(f"{args.name} at {args.scale} scale, seed {args.seed}, on {result['device']}: "
          f"{result['timings']['total']:.1f} s{cached}")
    cols = ["layer", "compression", "discrimination", "nc1", "rank", "probe_accuracy"]
    print("  ".join(f"{c:>14}" for c in cols))
    for row in result["layers"]:
        print("  ".join(f"{_fmt(row.get(c)):>14}" for c in cols))
    if "transfer_accuracy" in result:
        accs = ", ".join(f"{h}: {_fmt(a)}" for h, a in enumerate(result["transfer_accuracy"], start=1))
        print(f"transfer accuracy by head layers: {accs}")
    print(f"wrote {result['results_path']}")
    return 0


def _load_factory(spec: str, paths: list[str]) -> Any:
    import importlib
    import os

    if ":" not in spec:
        raise _UsageError(f"--model must look like MODULE:FACTORY, got {spec!r}")
    module_name, _, attr = spec.partition(":")
    for folder in [os.getcwd(), *paths]:
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _UsageError(f"cannot import {module_name!r} for --model: {exc}; add its folder with --path") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise _UsageError(f"{module_name!r} has no callable {attr!r}")
    return factory


def _state_dict(checkpoint: Any) -> Any:
    if isinstance(checkpoint, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(checkpoint.get(key), dict):
                return checkpoint[key]
    return checkpoint


def _cmd_measure(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import numpy as np
    import torch

    from pnc.report import DEFAULT_METRICS, measure

    factory = _load_factory(args.model, args.path)
    try:
        kwargs = json.loads(args.factory_kwargs)
    except ValueError as exc:
        raise _UsageError(f"--factory-kwargs is not JSON: {exc}") from None
    if not isinstance(kwargs, dict):
        raise _UsageError("--factory-kwargs must be a JSON object")
    model = factory(**kwargs)
    if not isinstance(model, torch.nn.Module):
        raise _UsageError(f"{args.model} returned {type(model).__name__}, not a torch.nn.Module")
    if args.weights:
        try:
            checkpoint = torch.load(args.weights, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise _UsageError(f"--weights: no such file {args.weights}") from None
        model.load_state_dict(_state_dict(checkpoint))
    if not Path(args.data).is_file():
        raise _UsageError(f"--data: no such file {args.data}")
    with np.load(args.data, allow_pickle=False) as arrays:
        missing = [key for key in (args.x_key, args.y_key) if key not in arrays.files]
        if missing:
            raise _UsageError(f"--data has no array {missing} (it has {arrays.files}); set --x-key / --y-key")
        x, y = arrays[args.x_key], arrays[args.y_key]
    model = model.to(args.device)
    x_tensor = torch.from_numpy(x)
    if x_tensor.is_floating_point():
        x_tensor = x_tensor.float()
    try:
        report = measure(model, (x_tensor, torch.from_numpy(y)), layers=args.layers,
                         metrics=tuple(args.metrics) if args.metrics else DEFAULT_METRICS,
                         batch_size=args.batch_size, device=args.device, pool=args.pool)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    print(report)
    for note in report.notes:
        print(f"skipped {note}")
    if args.json:
        report.to_json(args.json)
        print(f"wrote {args.json}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from pnc import download

    if args.dataset not in download.DATASET_FILES:
        raise _UsageError(f"unknown data set {args.dataset!r}; known: {', '.join(download.DATASET_FILES)}")
    paths = download.download_dataset(args.dataset, root=args.root, progress=True)
    for role, path in paths.items():
        print(f"{role}: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 failure, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on bad usage, 0 for --help
        return int(exc.code or 0)
    try:
        if args.command == "measure":
            return _cmd_measure(args)
        if args.command == "list":
            return _cmd_list()
        if args.command == "run":
            return _cmd_run(args)
        return _cmd_download(args)
    except ModuleNotFoundError as exc:
        if args.command in ("list", "run") and exc.name and exc.name.split(".")[0] != "pnc":
            print(f"python -m pnc {args.command} needs the cli extra: pip install 'pnc[cli]' (missing: {exc.name})",
                  file=sys.stderr)
            return 2
        raise
    except _UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"python -m pnc: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted (checkpoints, if any, are kept; run the same command again to resume)", file=sys.stderr)
        return 130
    except Exception as exc:  # a failed run: say what happened, exit 1
        print(f"python -m pnc: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
