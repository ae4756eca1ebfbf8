"""A LangChain 1.x agent with two tools, running on the built-in 135M model.

A model this small seldom decides to call a tool on its own, so a small middleware
forces a tool call on the agent's first step (tool_choice="any", enforced by
constrained decoding); the agent then answers from the tool's result.

Run it: ``python examples/agent.py "What is the weather in Paris?"``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, ModelResponse, wrap_model_call
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool

from modelport.integrations.langchain import ChatModelPort

CALLS: list[str] = []


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    CALLS.append(f"get_weather({city})")
    return f"It is 22 degrees and sunny in {city}."


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    CALLS.append(f"add({a}, {b})")
    return a + b


@wrap_model_call
def tool_first(request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> ModelResponse:
    """Forces a tool call until one has been made, then lets the model answer."""
    if not any(isinstance(m, ToolMessage) for m in request.messages):
        return handler(request.override(tool_choice="any"))
    return handler(request.override(tools=[]))


def build_agent(model: str = "smollm2-135m") -> Any:
    llm = ChatModelPort(model=model, temperature=0, max_tokens=60)
    return create_agent(llm, tools=[get_weather, add], middleware=[tool_first])


def main(question: str = "What is the weather in Paris?") -> dict[str, Any]:
    result: dict[str, Any] = build_agent().invoke({"messages": [("user", question)]})
    for message in result["messages"]:
        print(f"{message.type:>6}: {message.text or getattr(message, 'tool_calls', '')}")
    return result


if __name__ == "__main__":
    main(*sys.argv[1:2])
