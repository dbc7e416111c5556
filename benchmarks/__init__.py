"""Benchmarks of pnc (run ``python benchmarks/run.py``); not part of the test suite."""
