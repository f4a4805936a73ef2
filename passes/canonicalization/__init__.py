"""Canonicalization patterns of nnopt's dialects, used by xDSL's `canonicalize` pass."""
