"""A LlamaIndex VectorStoreIndex query engine over ``examples/data``, fully offline.

``ModelPortEmbedding`` (all-MiniLM-L6-v2) embeds the documents and the question, the index
retrieves three candidates, ``ModelPortRerank`` keeps the best one (any reranking model can be
named: a cross-encoder entry, an embedder, a local chat model), and ``ModelPortLLM``
(SmolLM2-135M) writes the answer from it.

Run it: ``python examples/llama_index_rag.py "How tall is the Harbour Lighthouse?"``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from llama_index.core import Document, VectorStoreIndex

from modelport.integrations.llama_index import ModelPortEmbedding, ModelPortLLM, ModelPortRerank

DATA = Path(__file__).resolve().parent / "data"


def load_documents() -> list[Document]:
    return [
        Document(text=p.read_text(encoding="utf-8"), metadata={"file_name": p.name}) for p in sorted(DATA.glob("*.md"))
    ]


def build_query_engine(
    model: str = "smollm2-135m", embeddings: str = "minilm-l6", reranker: str = "minilm-l6", candidates: int = 3
) -> Any:
    index = VectorStoreIndex.from_documents(load_documents(), embed_model=ModelPortEmbedding(embeddings))
    return index.as_query_engine(
        llm=ModelPortLLM(model, temperature=0, max_tokens=96),
        similarity_top_k=candidates,
        node_postprocessors=[ModelPortRerank(reranker, top_n=1)],
    )


def main(question: str = "How tall is the Harbour Lighthouse?") -> Any:
    return build_query_engine().query(question)


if __name__ == "__main__":
    response = main(*sys.argv[1:2])
    print(response)
    print("sources:", [n.node.metadata["file_name"] for n in response.source_nodes])
