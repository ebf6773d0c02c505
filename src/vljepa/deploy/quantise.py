"""int8 exports: onnxruntime's dynamic quantisation of an fp32 export's X-encoder and predictor, in place.

Dynamic quantisation stores int8 weights and quantises activations per batch at run time, so it needs no
calibration data. Only the X-encoder and predictor are quantised: their matmuls are the cost of a query,
while the Y-encoder stays fp32, so label and option embeddings are the fp32 model's. Each graph first goes
through onnxruntime's recommended shape inference and graph optimisation (`quant_pre_process`). This
module needs onnxruntime, not PyTorch: an fp32 export can be quantised where it is deployed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..core.progress import progress_bar
from .sidecar import GraphSpec, OnnxExportError, read_sidecar, write_sidecar

INT8_GRAPHS = ("x_encoder", "predictor")


def _quantise(folder: Path, spec: GraphSpec) -> GraphSpec:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    path = folder / spec.file
    prepared, quantised = path.with_suffix(".prepared.onnx"), path.with_suffix(".int8.onnx")
    quant_pre_process(str(path), str(prepared))
    quantize_dynamic(prepared, quantised, weight_type=QuantType.QInt8)
    path.unlink()
    prepared.unlink()
    return GraphSpec(file=quantised.name, bytes=quantised.stat().st_size, inputs=spec.inputs, outputs=spec.outputs)


def quantise_export(folder: str | Path) -> None:
    """Turn the fp32 export in `folder` into an int8 one: its X-encoder and predictor graphs are replaced by
    int8 ones and the sidecar says so."""
    folder = Path(folder)
    sidecar = read_sidecar(folder)
    if sidecar.weights != "fp32":
        raise OnnxExportError(f"{folder}: the export's weights are already {sidecar.weights}")
    graphs = dict(sidecar.graphs)
    with progress_bar("quantising ONNX graphs", len(INT8_GRAPHS)) as advance:
        for name in INT8_GRAPHS:
            graphs[name] = _quantise(folder, graphs[name])
            advance()
    write_sidecar(dataclasses.replace(sidecar, weights="int8", graphs=graphs), folder)
