"""Ragged token rows -> one padded batch and its mask: the one padding helper of the library.

Built on `torch.nn.utils.rnn.pad_sequence` (which pads either side); the mask marks the real
positions. Right padding keeps positions contiguous from 0; left padding lines up the rows' ends
(where generation continues).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence


def pad_rows(rows: Sequence[Sequence[int]], value: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of token ids -> ids (B, L) long filled with `value` past each row, and mask (B, L) bool;
    L is the longest row (0 when every row is empty)."""
    if not rows:
        return torch.zeros(0, 0, dtype=torch.long), torch.zeros(0, 0, dtype=torch.bool)
    side = "left" if left else "right"
    ids = pad_sequence(
        [torch.tensor(row, dtype=torch.long) for row in rows], batch_first=True, padding_value=value, padding_side=side
    )
    mask = pad_sequence(
        [torch.ones(len(row), dtype=torch.bool) for row in rows],
        batch_first=True,
        padding_value=False,
        padding_side=side,
    )
    return ids, mask
