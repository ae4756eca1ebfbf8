"""A GGUF file's header: its metadata and tensor shapes, read without loading the model.

Enough of the format (version 2 and 3) to estimate a model's memory before it loads: the
key-value metadata and each tensor's element count. Arrays are skipped, not kept.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["GgufHeader", "read_gguf_header"]

# Value types: (struct format, size) for the fixed-size ones; 8 is a string, 9 an array.
_SCALARS = {
    0: ("<B", 1),
    1: ("<b", 1),
    2: ("<H", 2),
    3: ("<h", 2),
    4: ("<I", 4),
    5: ("<i", 4),
    6: ("<f", 4),
    7: ("<?", 1),
    10: ("<Q", 8),
    11: ("<q", 8),
    12: ("<d", 8),
}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class GgufHeader:
    """A GGUF file's metadata (arrays left out) and its tensors' element counts."""

    metadata: dict[str, Any] = field(default_factory=dict)
    tensor_elements: dict[str, int] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        """``general.architecture`` (``llama``, ``gemma3``...)."""
        return str(self.metadata.get("general.architecture", ""))

    def arch(self, key: str, default: Any = None) -> Any:
        """The architecture's own key, e.g. ``arch("block_count")`` for ``llama.block_count``."""
        return self.metadata.get(f"{self.architecture}.{key}", default)

    @property
    def parameters(self) -> int:
        """Every tensor's elements together."""
        return sum(self.tensor_elements.values())

    def kv_bytes_per_token(self, *, cache_bytes: int = 2) -> int:
        """Bytes one cached token takes in a full-attention cache: K and V of every layer (f16)."""
        layers = int(self.arch("block_count", 0))
        heads = int(self.arch("attention.head_count", 1) or 1)
        heads_kv = self.arch("attention.head_count_kv", heads)
        heads_kv = int(max(heads_kv) if isinstance(heads_kv, list) else heads_kv)
        embd = int(self.arch("embedding_length", 0))
        key = int(self.arch("attention.key_length", embd // heads))
        value = int(self.arch("attention.value_length", embd // heads))
        return layers * heads_kv * (key + value) * cache_bytes


def _read(stream: BinaryIO, fmt: str, size: int) -> Any:
    data = stream.read(size)
    if len(data) != size:
        raise ValueError("the file ends inside its header")
    return struct.unpack(fmt, data)[0]


def _string(stream: BinaryIO) -> str:
    length = _read(stream, "<Q", 8)
    return stream.read(length).decode("utf-8", errors="replace")


def _value(stream: BinaryIO, kind: int) -> Any:
    if kind in _SCALARS:
        return _read(stream, *_SCALARS[kind])
    if kind == _STRING:
        return _string(stream)
    if kind == _ARRAY:
        item, count = _read(stream, "<I", 4), _read(stream, "<Q", 8)
        if item in _SCALARS:  # skipped in one seek
            stream.seek(_SCALARS[item][1] * count, 1)
        else:
            for _ in range(count):
                _value(stream, item)
        return None
    raise ValueError(f"unknown GGUF value type {kind}")


def read_gguf_header(path: str | Path) -> GgufHeader:
    """Reads the metadata and tensor shapes at the start of a GGUF file.

    Raises:
        ValueError: If the file is not GGUF.
        OSError: If it cannot be read.
    """
    with open(path, "rb") as stream:
        if stream.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version = _read(stream, "<I", 4)
        if version < 2:
            raise ValueError(f"GGUF version {version} is too old")
        tensors, pairs = _read(stream, "<Q", 8), _read(stream, "<Q", 8)
        metadata: dict[str, Any] = {}
        for _ in range(pairs):
            key = _string(stream)
            value = _value(stream, _read(stream, "<I", 4))
            if value is not None:
                metadata[key] = value
        elements: dict[str, int] = {}
        for _ in range(tensors):
            name = _string(stream)
            dims = _read(stream, "<I", 4)
            shape = [_read(stream, "<Q", 8) for _ in range(dims)]
            _read(stream, "<I", 4)  # the tensor's type
            _read(stream, "<Q", 8)  # its offset
            elements[name] = math.prod(shape)
    return GgufHeader(metadata, elements)
