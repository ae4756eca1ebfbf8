"""A LangChain runnable (the RAG example) served as if it were a model."""

from __future__ import annotations

from typing import Any


def test_the_rag_chain_answers_like_a_model(client: Any) -> None:
    models = [m.id for m in client.models.list()]
    assert "rag-bot" in models
    question = [{"role": "user", "content": "How tall is the Harbour Lighthouse?"}]
    whole = client.chat.completions.create(model="rag-bot", messages=question)
    assert whole.choices[0].message.content.strip()
    assert whole.usage.prompt_tokens > 0 and whole.usage.completion_tokens > 0  # the chain's model calls
    chunks = list(client.chat.completions.create(model="rag-bot", messages=question, stream=True))
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) > 1, "a served chain streams token by token"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_runnable_registered_in_code() -> None:
    from langchain_core.runnables import RunnableLambda
    from openai import OpenAI

    from modelport.integrations.langchain.runnable_worker import RunnableWorker
    from modelport.server import create_app
    from modelport.workers import ModelRegistry
    from tests.loopback import serve

    shout = RunnableLambda(lambda messages: messages[-1].content.upper())
    models = ModelRegistry()
    models.add_worker("shout", RunnableWorker(shout), kind="runnable")
    with serve(create_app(models)) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        out = client.chat.completions.create(model="shout", messages=[{"role": "user", "content": "hello"}])
        assert out.choices[0].message.content == "HELLO"
