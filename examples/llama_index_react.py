"""A LlamaIndex ReActAgent on the built-in 135M model.

ReAct needs no function-calling API: the model writes Thought / Action / Answer as
text. A 135M model often answers directly, which ReAct accepts as a final answer.

Run it: ``python examples/llama_index_react.py "What is 2 plus 3?"``.
"""

from __future__ import annotations

import asyncio
import sys

from llama_index.core.agent.workflow import ReActAgent
from llama_index.core.tools import FunctionTool

from modelport.integrations.llama_index import ModelPortLLM


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def build_agent(model: str = "smollm2-135m") -> ReActAgent:
    return ReActAgent(tools=[FunctionTool.from_defaults(add)], llm=ModelPortLLM(model, temperature=0, max_tokens=128))


async def ask(question: str) -> str:
    response = await build_agent().run(question, max_iterations=6)
    return str(response)


def main(question: str = "What is 2 plus 3?") -> str:
    return asyncio.run(ask(question))


if __name__ == "__main__":
    print(main(*sys.argv[1:2]))
