"""Peak bytes of the tensors a block of PyTorch code creates, counted op by op as the allocator would be asked.

A `TorchDispatchMode` sees every op's outputs. Each new storage is counted once (an output sharing an
input's storage, as a view or an in-place op's does, allocates nothing) and uncounted when it is freed (a `weakref.finalize` on the storage, whose Python object lives as
long as the storage does). The same count runs on real tensors and on the fake tensors of a
`FakeTensorMode`, where nothing is allocated: `vljepa plan` traces a paper-size training step this way in
seconds. Tensors made before the block (the weights) are not counted: the planner adds them itself. What
it leaves out is the allocator's own overhead (a CUDA caching allocator's rounding and fragmentation),
which the planner's safety margin covers.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveBytes(TorchDispatchMode):
    """`with LiveBytes() as counter:` ... then `counter.peak` (bytes): the most alive at once inside the block;
    `counter.timeline`: the bytes alive after each op."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self.timeline: list[int] = []  # bytes alive after each op
        self.chunk_end = 0  # the length of the timeline at `end_chunk`
        self._sizes: dict[int, int] = {}

    def _free(self, key: int) -> None:
        self.live -= self._sizes.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        inputs = {id(leaf.untyped_storage()) for leaf in tree_leaves((args, kwargs)) if isinstance(leaf, torch.Tensor)}
        for leaf in tree_leaves(output):
            if isinstance(leaf, torch.Tensor):
                storage = leaf.untyped_storage()
                key = id(storage)
                if key not in self._sizes and key not in inputs:  # an in-place op or a view allocates nothing
                    self._sizes[key] = storage.nbytes()
                    self.live += storage.nbytes()
                    weakref.finalize(storage, self._free, key)
        self.peak = max(self.peak, self.live)
        self.timeline.append(self.live)
        return output

    def end_chunk(self) -> None:
        """Mark where a part of the block ends (`chunk_end`: the ops so far)."""
        self.chunk_end = len(self.timeline)
