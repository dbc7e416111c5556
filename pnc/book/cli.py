"""The book's experiments from the command line: ``python -m pnc.book list | run NAME ...``.

Needs the ``cli`` extra (``pip install "pnc[cli]"``). Exit codes: 0 success, 1 the run failed, 2 bad usage (unknown
experiment, option or value, or a missing optional package).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from pnc.cli import UsageError, run_cli

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m pnc.book``."""
    from pnc import __version__

    parser = argparse.ArgumentParser(
        prog="python -m pnc.book",
        description="Progressive neural collapse: run the book's experiments at book or paper scale.",
    )
    parser.add_argument("--version", action="version", version=f"pnc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sub.add_parser("list", help="list the named experiments and their settings")

    run = sub.add_parser("run", help="run one experiment and write its results as JSON (+ .npz arrays)")
    run.add_argument("name", help="experiment name (see `python -m pnc.book list`)")
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

    return parser


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _cmd_list(args: argparse.Namespace) -> int:
    from pnc.book.runner import _registry

    for name, exp in sorted(_registry().items()):
        print(f"{name}: {getattr(exp, 'description', '')}")
        for scale in ("book", "paper"):
            cfg = getattr(exp, scale, {}) or {}
            shown = ", ".join(f"{k}={v}" for k, v in cfg.items())
            print(f"    {scale}: {shown}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from pnc.book import runner

    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    registry = runner._registry()
    if args.name not in registry:
        raise UsageError(f"unknown experiment {args.name!r}; known: {', '.join(sorted(registry))}")
    try:
        overrides = dict(runner.parse_override(text) for text in args.overrides)
        exp = registry[args.name]
        runner.apply_overrides(getattr(exp, args.scale), overrides)
        runner.resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    result = runner.run_experiment(
        args.name, scale=args.scale, seed=args.seed, device=args.device, out=args.out, overrides=overrides,
        progress=not args.quiet, use_cache=not args.no_cache, cache_dir=args.cache_dir,
        keep_checkpoints=args.keep_checkpoints,
    )
    cached = " (from the result cache)" if result.get("from_cache") else ""
    print(f"{args.name} at {args.scale} scale, seed {args.seed}, on {result['device']}: "
          f"{result['timings']['total']:.1f} s{cached}")
    cols = ["layer", "compression", "discrimination", "nc1", "numerical_rank", "probe_accuracy"]
    print("  ".join(f"{c:>14}" for c in cols))
    for row in result["layers"]:
        print("  ".join(f"{_fmt(row.get(c)):>14}" for c in cols))
    if "transfer_accuracy" in result:
        accs = ", ".join(f"{h}: {_fmt(a)}" for h, a in enumerate(result["transfer_accuracy"], start=1))
        print(f"transfer accuracy by head layers: {accs}")
    print(f"wrote {result['results_path']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pnc.book``; returns the exit code."""
    return run_cli(build_parser(), {"list": _cmd_list, "run": _cmd_run}, argv,
                   extra_hint="needs the cli extra: pip install 'pnc[cli]'")
