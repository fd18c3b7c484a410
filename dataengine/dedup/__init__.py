"""Deduplication: exact (normalised text hash) now; near-duplicate MinHash-LSH builds on the same marks."""
