"""Benchmarks behind ``edge-agent bench``: each runs its baseline in the same run, with a ratio."""
