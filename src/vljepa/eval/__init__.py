"""Evaluation: the suite over any manifest (`suite`), the paper's benchmark protocols (`benchmark`) and their
results table (`benchmark_table`), the contamination check (`contamination`), decoding metrics (`generation`,
`text_metrics`: CIDEr-D, BLEU-4, ROUGE-L), frozen-feature probes of an X-encoder (`probe`, on the substrate),
stream scoring and plots (`stream_naming`, `stream_plot`) and the demo report (`report`).
"""
