"""Benchmarks: figures, not tests (`make bench`)."""
