"""The book's experiments from the command line: ``python -m pnc.book list | run NAME ... | grade FOLDER``.

``grade`` is the autograder of the coding exercises (:mod:`pnc.book.grading`).

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

    grade = sub.add_parser("grade", help="grade the coding exercises in FOLDER/<student>/<exercise label>.py|.ipynb",
                           description="Run every submission after its chapter's setup in a fresh Python process, "
                           "check it against the exercise's stated criteria and write the grade table (CSV) and a "
                           "summary. Runs the students' code: do it offline, in a throwaway account if that matters.")
    grade.add_argument("folder", nargs="?", help="the submissions: FOLDER/<student>/<exercise label>.py or .ipynb")
    grade.add_argument("--out", default="grades.csv", help="CSV file of the grade table (default: grades.csv)")
    grade.add_argument("--chapters", default=None, help="the book's chapters folder (default: the checkout's)")
    grade.add_argument("--timeout", type=float, default=600.0, help="seconds per submission (default: 600)")
    grade.add_argument("--exercise", dest="exercises", action="append", default=None, metavar="LABEL",
                       help="grade only this exercise (repeatable)")
    grade.add_argument("--list", action="store_true", help="list the graded exercises and what each submits")
    grade.add_argument("--write-solutions", metavar="DIR", default=None,
                       help="write the book's solutions as DIR/book-solution/<label>.py (a folder to try it on)")

    return parser


def _cmd_grade(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pnc.book import grading

    chapters = Path(args.chapters) if args.chapters else None
    try:
        if args.list:
            for label, spec in grading.EXERCISES.items():
                print(f"{label}: {spec.auto_points:g} of {spec.points} points automatic; submit "
                      f"{', '.join(spec.variables)}; runs after the first code cell of {spec.chapter}")
            return 0
        if args.write_solutions:
            written = grading.write_solutions(args.write_solutions, args.exercises, chapters=chapters)
            print(f"wrote {len(written)} solutions to {Path(args.write_solutions) / 'book-solution'}")
            return 0
        if not args.folder:
            raise UsageError("grade needs a FOLDER of submissions (or --list, --write-solutions DIR)")
        rows = grading.grade_folder(args.folder, chapters=chapters, timeout=args.timeout, exercises=args.exercises,
                                    progress=lambda what: print(f"grading {what} ...", flush=True))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = grading.write_csv(rows, args.out)
    print(grading.summary(rows))
    print(f"wrote {out}")
    return 0


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _cmd_list(args: argparse.Namespace) -> int:
    from pnc.book import runner

    for name, exp in sorted(runner.experiment_registry().items()):
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
    registry = runner.experiment_registry()
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
    return run_cli(build_parser(), {"list": _cmd_list, "run": _cmd_run, "grade": _cmd_grade}, argv,
                   extra_hint="needs the cli extra: pip install 'pnc[cli]'")
