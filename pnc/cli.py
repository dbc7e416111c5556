"""The command line: ``pnc measure ... | download DATASET | --version`` (also ``python -m pnc``).

``measure`` is the researcher's entry: a saved model (an importable factory + a ``weights_only`` checkpoint) and a
labelled ``.npz`` data file give the layerwise table, printed and optionally written as JSON. The book's named
experiments have their own command, ``python -m pnc.book list | run NAME`` (:mod:`pnc.book.cli`), built with
:func:`run_cli` from here.

Exit codes: 0 success, 1 the run failed, 2 bad usage (unknown experiment, option or value).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["UsageError", "build_parser", "main", "run_cli"]


class UsageError(Exception):
    """Bad usage: printed with the usage line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m pnc``."""
    parser = argparse.ArgumentParser(
        prog="pnc",
        description="Progressive neural collapse: measure a model layer by layer, download data sets.",
        epilog="The book's experiments: python -m pnc.book list | run NAME.",
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
    from pnc.registry import DEFAULT_METRICS, METRICS

    me.add_argument("--metrics", nargs="+", default=None, metavar="METRIC",
                    help=f"metric names ({', '.join(METRICS)}) or 'all' (default: {' '.join(DEFAULT_METRICS)})")
    me.add_argument("--pool", default="auto",
                    help="auto | mean | flatten | first | last (default: auto = last token for decoders, class "
                         "token for models with one, else mean)")
    me.add_argument("--token-labels", default=None, choices=["next", "aligned"],
                    help="token-level labels for a language model: y holds one label per token, shape (N, tokens); "
                         "'next' = y are the token ids and position t is labelled with the token at t + 1, "
                         "'aligned' = y[:, t] is position t's label")
    me.add_argument("--tile-size", type=int, default=None, metavar="T",
                    help="classes per side of a tile of the K×K computations (default: from a 32 MiB budget)")
    me.add_argument("--batch-size", type=int, default=512)
    me.add_argument("--device", default="cpu")
    me.add_argument("--path", action="append", default=[], help="folder to import the model's module from "
                    "(repeatable; the current folder is always searched)")
    me.add_argument("--json", default=None, metavar="FILE", help="also write the table as JSON")

    dl = sub.add_parser("download", help="download and verify a data set (mnist, fashion_mnist, cifar10)")
    dl.add_argument("dataset")
    dl.add_argument("--root", default=None, help="data folder (default: $PNC_DATA_DIR or the user cache folder)")
    return parser


def _load_factory(spec: str, paths: list[str]) -> Any:
    import importlib
    import os

    if ":" not in spec:
        raise UsageError(f"--model must look like MODULE:FACTORY, got {spec!r}")
    module_name, _, attr = spec.partition(":")
    for folder in [os.getcwd(), *paths]:
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r} for --model: {exc}; add its folder with --path") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"{module_name!r} has no callable {attr!r}")
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

    from pnc.registry import DEFAULT_METRICS
    from pnc.report import measure

    factory = _load_factory(args.model, args.path)
    try:
        kwargs = json.loads(args.factory_kwargs)
    except ValueError as exc:
        raise UsageError(f"--factory-kwargs is not JSON: {exc}") from None
    if not isinstance(kwargs, dict):
        raise UsageError("--factory-kwargs must be a JSON object")
    model = factory(**kwargs)
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"{args.model} returned {type(model).__name__}, not a torch.nn.Module")
    if args.weights:
        try:
            checkpoint = torch.load(args.weights, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise UsageError(f"--weights: no such file {args.weights}") from None
        model.load_state_dict(_state_dict(checkpoint))
    if not Path(args.data).is_file():
        raise UsageError(f"--data: no such file {args.data}")
    with np.load(args.data, allow_pickle=False) as arrays:
        missing = [key for key in (args.x_key, args.y_key) if key not in arrays.files]
        if missing:
            raise UsageError(f"--data has no array {missing} (it has {arrays.files}); set --x-key / --y-key")
        x, y = arrays[args.x_key], arrays[args.y_key]
    model = model.to(args.device)
    x_tensor = torch.from_numpy(x)
    if x_tensor.is_floating_point():
        x_tensor = x_tensor.float()
    try:
        report = measure(model, (x_tensor, torch.from_numpy(y)), layers=args.layers,
                         metrics=("all" if args.metrics == ["all"] else tuple(args.metrics)) if args.metrics
                         else DEFAULT_METRICS,
                         batch_size=args.batch_size, device=args.device, pool=args.pool,
                         token_labels=args.token_labels, tile_size=args.tile_size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
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
        raise UsageError(f"unknown data set {args.dataset!r}; known: {', '.join(download.DATASET_FILES)}")
    paths = download.download_dataset(args.dataset, root=args.root, progress=True)
    for role, path in paths.items():
        print(f"{role}: {path}")
    return 0


def run_cli(parser: argparse.ArgumentParser, commands: dict[str, Callable[[argparse.Namespace], int]],
            argv: Sequence[str] | None, extra_hint: str = "") -> int:
    """Parse ``argv`` and run ``commands[args.command]``, turning errors into exit codes.

    0 ok; 2 bad usage (argparse errors, :class:`UsageError`, a missing optional package, named with ``extra_hint``);
    1 a failed run (the error is printed); 130 interrupted.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on bad usage, 0 for --help and --version
        return int(exc.code or 0)
    try:
        return commands[args.command](args)
    except ModuleNotFoundError as exc:
        if extra_hint and exc.name and exc.name.split(".")[0] != "pnc":
            print(f"{parser.prog} {args.command} {extra_hint} (missing: {exc.name})", file=sys.stderr)
            return 2
        raise
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted (checkpoints, if any, are kept; run the same command again to resume)", file=sys.stderr)
        return 130
    except Exception as exc:  # a failed run: say what happened, exit 1
        print(f"{parser.prog}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pnc`` / ``python -m pnc``; returns the exit code (0 ok, 1 failure, 2 usage error)."""
    return run_cli(build_parser(), {"measure": _cmd_measure, "download": _cmd_download}, argv)
