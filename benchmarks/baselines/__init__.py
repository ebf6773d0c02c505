"""Baselines for controlled comparisons with VL-JEPA: a token-generating VLM on the same visual tokens.

Used only by the benchmark scripts (and their tests), so it lives beside them rather than in the library:
a script run as `python benchmarks/<name>.py` imports it as `baselines`, and pytest puts `benchmarks/` on
its path (`pyproject.toml`). Its training loop uses the library's training substrate (`vljepa.train`).
"""
