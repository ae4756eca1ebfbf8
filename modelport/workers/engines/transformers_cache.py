"""The batch state of the ``transformers`` batcher: KV cache, attention mask and positions by row.

Columns are cache slots. A row's mask is 0 on the left padding of its prompt and on slots it
does not use: the tail of a step wider than its own input (another row verified a draft), or a
draft token that was rejected. So the rows of one batch can sit at different positions and take
steps of different widths, and a row can leave the batch with its slice of the cache (``take``)
and come back later (``put_back``), left-padded to the batch's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BatchRows", "ParkedRow"]


@dataclass(slots=True)
class ParkedRow:
    """A row set aside with its cache slice, mask and next position."""

    index: int  # in the batcher's list of rows
    layers: list[tuple[Any, Any]]  # each layer's (keys, values) for this row, shape (1, heads, slots, dim)
    mask: Any  # (1, slots)
    position: Any  # (1,)


class BatchRows:
    """A ``DynamicCache`` with each row's attention mask and next position.

    Args:
        torch: The torch module.
        cache: The cache the prompts were computed into.
        mask: Attention mask over the cache's slots, ``(rows, slots)``.
        position: Each row's next position id, ``(rows,)``.
    """

    def __init__(self, torch: Any, cache: Any, mask: Any, position: Any) -> None:
        from transformers.cache_utils import DynamicLayer

        self.torch = torch
        self.cache = cache
        self.mask = mask
        self.position = position
        self.width = 1  # columns of the last step
        # Slicing rows out and padding them back in needs full-attention layers holding plain
        # (keys, values) tensors; a sliding-window or quantised layer keeps other state.
        self.surgical = all(type(layer) is DynamicLayer for layer in cache.layers)

    def step(self, feeds: list[list[int]], pad: int) -> tuple[Any, Any, Any]:
        """The inputs of one step (ids, mask, positions), each row's ``feeds`` left-aligned.

        The mask gains the step's columns, 0 beyond each row's own feed.
        """
        torch = self.torch
        width = max(len(feed) for feed in feeds)
        ids = torch.full((len(feeds), width), pad, dtype=torch.long)
        new = torch.zeros((len(feeds), width), dtype=self.mask.dtype)
        for b, feed in enumerate(feeds):
            ids[b, : len(feed)] = torch.tensor(feed, dtype=torch.long)
            new[b, : len(feed)] = 1
        self.mask = torch.cat([self.mask, new.to(self.mask.device)], dim=1)
        self.width = width
        positions = self.position[:, None] + torch.arange(width, device=self.position.device)
        return ids.to(self.mask.device), self.mask, positions

    def settle(self, b: int, used: int, fed: int) -> None:
        """Row ``b`` keeps the first ``used`` of the ``fed`` tokens of the last step."""
        if used < fed:
            start = self.mask.shape[1] - self.width
            self.mask[b, start + used : start + fed] = 0
        self.position[b] += used

    def select(self, keep: list[int]) -> None:
        """Keeps only the rows ``keep`` (batch indices), in that order."""
        index = self.torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask, self.position = self.mask[index], self.position[index]

    def take(self, b: int, index: int) -> ParkedRow:
        """Row ``b``'s slice of the batch (call ``select`` to drop it from the batch)."""
        layers = [(layer.keys[b : b + 1].clone(), layer.values[b : b + 1].clone()) for layer in self.cache.layers]
        return ParkedRow(index, layers, self.mask[b : b + 1].clone(), self.position[b : b + 1].clone())

    def put_back(self, parked: list[ParkedRow], *, empty: bool) -> None:
        """Appends ``parked`` rows to the batch; ``empty`` when no row is left in it."""
        torch = self.torch
        slots = max([row.mask.shape[1] for row in parked] + ([] if empty else [self.mask.shape[1]]))

        def pad(tensor: Any, dim: int) -> Any:
            missing = slots - tensor.shape[dim]
            if missing == 0:
                return tensor
            shape = list(tensor.shape)
            shape[dim] = missing
            return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)

        masks = [] if empty else [pad(self.mask, 1)]
        self.mask = torch.cat(masks + [pad(row.mask, 1) for row in parked], dim=0)
        self.position = torch.cat(([] if empty else [self.position]) + [row.position for row in parked])
        for i, layer in enumerate(self.cache.layers):
            keys = [] if empty else [pad(layer.keys, -2)]
            values = [] if empty else [pad(layer.values, -2)]
            layer.keys = torch.cat(keys + [pad(row.layers[i][0], -2) for row in parked], dim=0)
            layer.values = torch.cat(values + [pad(row.layers[i][1], -2) for row in parked], dim=0)
