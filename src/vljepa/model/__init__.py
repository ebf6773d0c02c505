"""The model: the frozen X-encoder with its preprocessing (`x_encoder`), the predictor (`predictor`), the
Y-encoder (`y_encoder`), the optional Y-decoder (`y_decoder`) and the small causal LMs' shared parts
(`causal_lm`), wired together as `VLJepa` (`vljepa`: checkpoints, inference, decoding); the training losses
(`losses`), the parameter/FLOP table of `vljepa info` (`info`) and the conversion of upstream V-JEPA 2
checkpoints (`convert`).

    from vljepa.model import VLJepa
"""

from .vljepa import CONFIG_FILE, DECODER_DIR, WEIGHTS_FILE, VLJepa, VLJepaOutput

__all__ = ["CONFIG_FILE", "DECODER_DIR", "WEIGHTS_FILE", "VLJepa", "VLJepaOutput"]
