"""Adapters from modelport workers to LangChain (``langchain/``) and LlamaIndex (``llama_index/``).

Each translates its framework's messages and tools onto ``core`` and back. May import ``core`` and
``workers``; never the server, ``modelport.ray`` or the CLI.
"""

__all__: list[str] = []
