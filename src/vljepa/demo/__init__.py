"""`vljepa demo`: the whole method end to end on the built-in world (`run`: generate, train both stages and the
Y-decoder, evaluate, caption a stream, write the report), sized to a wall-clock budget (`budget`).

    from vljepa.demo import run_demo
"""

from .run import DECODER_CONFIG, DEMO_CONFIG, ensure_world, packaged_config, run_demo

__all__ = ["DECODER_CONFIG", "DEMO_CONFIG", "ensure_world", "packaged_config", "run_demo"]
