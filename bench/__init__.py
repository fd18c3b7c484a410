"""Benchmarks: each runs ours and the real peer on the same input in the same run and prints the ratio."""
