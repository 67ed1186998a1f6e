"""Benchmarks (run as scripts; ``benchmarks.bench_app`` is imported by gunicorn)."""
