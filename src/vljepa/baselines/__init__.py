"""Baselines for controlled comparisons with VL-JEPA: a token-generating VLM on the same visual tokens."""
