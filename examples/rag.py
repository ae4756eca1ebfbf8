"""RAG over examples/data with LangChain: retrieve with ModelPortEmbeddings, rerank, answer with ChatModelPort.

The retriever fetches ``candidates`` chunks and ``ModelPortReranker`` keeps the best ``top_n``
(a ``ContextualCompressionRetriever``). Any reranking model can be named: a ``cross-encoder``
entry, an embedder (cosine) or a local chat model ("yes" probability). With the built-in
MiniLM both retrieving and reranking, the order stays the retriever's; see
benchmarks/bench_rerank.py for what each built-in reranker does to retrieval quality.

Run it: ``python examples/rag.py "How tall is the lighthouse?"``. ``build_chain`` is also what
``modelport serve`` can serve as a model (see the server config example).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_text_splitters import RecursiveCharacterTextSplitter

from modelport.integrations.langchain import ChatModelPort, ModelPortEmbeddings, ModelPortReranker

DATA = Path(__file__).parent / "data"

PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "You are a helpful assistant. Answer the question using only this context:\n\n{context}"),
        ("human", "{question}"),
    ]
)


def load_documents() -> list[Document]:
    """Reads every Markdown file in examples/data."""
    return [Document(p.read_text(encoding="utf-8"), metadata={"source": p.name}) for p in sorted(DATA.glob("*.md"))]


def build_retriever(
    embeddings: str = "minilm-l6", k: int = 2, *, reranker: str | None = "minilm-l6", candidates: int = 6
) -> Any:
    """Splits the documents, embeds them into an in-memory vector store and returns a retriever.

    With ``reranker``, the store returns ``candidates`` chunks and the reranker keeps the best ``k``.
    """
    from langchain_classic.retrievers import ContextualCompressionRetriever

    chunks = RecursiveCharacterTextSplitter(chunk_size=400, chunk_overlap=40).split_documents(load_documents())
    store = InMemoryVectorStore(ModelPortEmbeddings(model=embeddings))
    store.add_documents(chunks)
    if reranker is None:
        return store.as_retriever(search_kwargs={"k": k})
    return ContextualCompressionRetriever(
        base_compressor=ModelPortReranker(model=reranker, top_n=k),
        base_retriever=store.as_retriever(search_kwargs={"k": max(candidates, k)}),
    )


def _question(value: Any) -> str:
    # Served as a model, the chain receives chat messages; called directly, a string.
    if isinstance(value, list) and value and isinstance(value[-1], BaseMessage):
        return str(value[-1].text)
    return str(value)


def build_chain(
    model: str = "smollm2-135m", embeddings: str = "minilm-l6", reranker: str | None = "minilm-l6"
) -> Runnable[Any, str]:
    """question (or chat messages) -> retrieved and reranked context -> answer text."""
    retriever = build_retriever(embeddings, reranker=reranker)
    llm = ChatModelPort(model=model, temperature=0, max_tokens=80)

    def context(question: str) -> str:
        return "\n\n".join(d.page_content for d in retriever.invoke(question))

    return (
        RunnableLambda(_question)
        | {"context": RunnableLambda(context), "question": RunnablePassthrough()}
        | PROMPT
        | llm
        | StrOutputParser()
    )


def main(question: str = "How tall is the Harbour Lighthouse?") -> str:
    answer = build_chain().invoke(question)
    print(answer)
    return answer


if __name__ == "__main__":
    main(*sys.argv[1:2])
