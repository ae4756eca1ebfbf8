"""LlamaIndex adapters: ``ModelPortLLM`` (a FunctionCallingLLM) and ``ModelPortEmbedding``.

May import ``core`` and ``workers``; never the server or ``modelport.ray``.
"""

from modelport.integrations.llama_index.embeddings import ModelPortEmbedding
from modelport.integrations.llama_index.llm import ModelPortLLM

__all__ = ["ModelPortEmbedding", "ModelPortLLM"]
