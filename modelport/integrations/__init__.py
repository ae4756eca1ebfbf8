"""Adapters from modelport workers to LangChain and LlamaIndex."""
