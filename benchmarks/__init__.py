"""Timed runs of lpgx's vmapped core; see ``benchmarks/RESULTS.md`` for the measured numbers."""
