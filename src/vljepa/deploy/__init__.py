"""Inference without PyTorch: ONNX export (`export.py`), int8 quantisation of an export (`quantise.py`), the
onnxruntime model (`runtime.py`), its numpy preprocessing (`preprocess.py`) and the export's sidecar
(`sidecar.py`). Only `export.py` imports torch."""
