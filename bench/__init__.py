"""Benchmarks of the replicator; ``python bench/run_all.py`` runs them (see README.md)."""
