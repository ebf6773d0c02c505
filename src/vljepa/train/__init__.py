"""The VL-JEPA trainer and the Y-decoder's training, on the shared substrate (`vljepa.substrate`): the loop
(`trainer`), its batch sources (`batches`, `loader`), training data and samples (`dataset`, `samples`), the
`best/` checkpoint (`best`), gradient caching (`grad_cache`), torchrun data parallelism (`distributed`) and
FSDP (`sharding`), and the Y-decoder's training (`decoder`). Training never imports evaluation.
"""
