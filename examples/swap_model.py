"""One chain, two models: swapping the model behind a LangChain chain is a change of name.

Run it: ``python examples/swap_model.py smollm2-135m-hf``.
"""

from __future__ import annotations

import sys

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from modelport.integrations.langchain import ChatModelPort

PROMPT = ChatPromptTemplate.from_messages(
    [("system", "You are a helpful assistant."), ("human", "Name the capital of {country}.")]
)


def build_chain(model: str):  # type: ignore[no-untyped-def]
    return PROMPT | ChatModelPort(model=model, temperature=0, max_tokens=30) | StrOutputParser()


def main(*models: str) -> dict[str, str]:
    answers = {name: build_chain(name).invoke({"country": "France"}) for name in models or ("smollm2-135m",)}
    for name, answer in answers.items():
        print(f"{name}: {answer}")
    return answers


if __name__ == "__main__":
    main(*sys.argv[1:])
