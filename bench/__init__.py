"""Benchmarks of the platform (docs/performance.md): `python -m bench`."""
