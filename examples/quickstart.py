"""The README's quick start: one registry, a chat model and an embedding model, offline."""

from modelport import ChatRequest, EmbeddingRequest, ModelRegistry, SystemMessage, UserMessage


def main() -> str:
    models = ModelRegistry.builtin()
    chat = models.chat("smollm2-135m")
    request = ChatRequest(
        [SystemMessage("You are a helpful assistant."), UserMessage("Name the capital of France.")],
        temperature=0,
        max_tokens=40,
    )
    answer = chat.invoke(request).text
    vectors = models.embedder("minilm-l6").embed(EmbeddingRequest(["hello", "world"])).vectors
    print(answer)
    print(f"{len(vectors)} vectors of {len(vectors[0])} dimensions")
    return answer


if __name__ == "__main__":
    main()
