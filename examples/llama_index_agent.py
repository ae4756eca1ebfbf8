"""A LlamaIndex FunctionAgent with two tools, on the built-in 135M model.

A model this small seldom decides to call a tool on its own, so the agent forces the
first call with ``initial_tool_choice`` (enforced by constrained decoding); then the
model answers from the tool's result.

Run it: ``python examples/llama_index_agent.py "What is the weather in Paris?"``.
"""

from __future__ import annotations

import asyncio
import sys

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.tools import FunctionTool

from modelport.integrations.llama_index import ModelPortLLM

CALLS: list[str] = []


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    CALLS.append(f"get_weather({city})")
    return f"It is 22 degrees and sunny in {city}."


def add(a: int, b: int) -> int:
    """Add two integers."""
    CALLS.append(f"add({a}, {b})")
    return a + b


def build_agent(model: str = "smollm2-135m") -> FunctionAgent:
    llm = ModelPortLLM(model, temperature=0, max_tokens=96)
    return FunctionAgent(
        tools=[FunctionTool.from_defaults(get_weather), FunctionTool.from_defaults(add)],
        llm=llm,
        system_prompt="You are a helpful assistant. Answer from the tool results.",
        initial_tool_choice="get_weather",
    )


async def ask(question: str) -> str:
    response = await build_agent().run(question)
    return str(response)


def main(question: str = "What is the weather in Paris?") -> str:
    return asyncio.run(ask(question))


if __name__ == "__main__":
    print(main(*sys.argv[1:2]))
