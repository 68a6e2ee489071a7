"""A KV cache that grows in place at inference instead of being copied at every step.

transformers' ``DynamicLayer`` appends a step's keys and values with ``torch.cat``, i.e. it copies
the whole cache of the layer at every forward pass: at batch 64 with ~300 cached positions of a
micro GPT-2 that copy takes 0.4 ms per tensor against 1.0 ms for the attention that reads them
(one CPU thread), and 27% of a greedy CoT batch's time in a profile of ``evaluate``.
:class:`RoomyLayer` keeps the keys and values in buffers with room to spare and writes only the
new positions; ``keys``/``values`` are views of the filled part, so everything that reads a
``DynamicLayer`` (attention, ``get_seq_length``, ``crop``, ``batch_select_indices``, ...) works
unchanged, and attention reads the same numbers (bit-identical results, tested).

When autograd may need the cached tensors (training: the cache holds the graph through the chain
of thoughts) a layer appends with ``torch.cat`` exactly as ``DynamicLayer`` does, since writing
into a buffer that earlier passes read would invalidate their saved tensors.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache, PreTrainedConfig
from transformers.cache_utils import DynamicLayer


class RoomyLayer(DynamicLayer):
    """A ``DynamicLayer`` whose inference updates write into preallocated room (see the module)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._room: tuple[torch.Tensor, torch.Tensor] | None = None

    def _backs_keys(self) -> bool:
        """Whether ``keys``/``values`` are still views of the room (not replaced by e.g.
        ``batch_select_indices`` or ``reorder_cache``, which make new tensors)."""
        room = self._room
        keys, values = self.keys, self.values
        return (room is not None and keys is not None and values is not None
                and keys.data_ptr() == room[0].data_ptr() and values.data_ptr() == room[1].data_ptr()
                and keys.shape[:2] == room[0].shape[:2] and keys.shape[-1] == room[0].shape[-1]
                and values.shape[-1] == room[1].shape[-1] and keys.stride() == room[0].stride())

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if torch.is_grad_enabled() and (key_states.requires_grad or value_states.requires_grad):
            self._room = None
            return super().update(key_states, value_states, *args, **kwargs)
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        old = self.get_seq_length()
        new = key_states.shape[-2]
        room = self._room if old == 0 or self._backs_keys() else None
        if room is not None and (old + new > room[0].shape[-2] or room[0].shape[0] != key_states.shape[0]
                                 or room[0].dtype != key_states.dtype or room[0].device != key_states.device):
            room = None
        if room is None:  # (re)allocate with half again as much room, and copy what is cached
            size = old + new + max(64, (old + new) // 2)
            batch, heads = key_states.shape[:2]
            room = (key_states.new_empty(batch, heads, size, key_states.shape[-1]),
                    value_states.new_empty(batch, value_states.shape[1], size, value_states.shape[-1]))
            if old and self.keys is not None and self.values is not None:
                room[0][:, :, :old].copy_(self.keys)
                room[1][:, :, :old].copy_(self.values)
            self._room = room
        room[0][:, :, old : old + new].copy_(key_states)
        room[1][:, :, old : old + new].copy_(value_states)
        self.keys, self.values = room[0][:, :, : old + new], room[1][:, :, : old + new]
        return self.keys, self.values

    def reset(self) -> None:
        self._room = None
        super().reset()


def new_cache(config: PreTrainedConfig) -> DynamicCache:
    """``DynamicCache(config=config)`` with every plain ``DynamicLayer`` made a :class:`RoomyLayer`
    (sliding-window and other special layers are kept as transformers builds them)."""
    cache = DynamicCache(config=config)
    cache.layers = [RoomyLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache
