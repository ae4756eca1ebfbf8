"""The OpenAI Agents SDK (``openai-agents``) over /v1/responses, on the built-in GGUF.

The agent's first turn is forced to call a tool (``tool_choice="required"``); the SDK then
resets the choice to ``auto`` (its ``reset_tool_choice``), so the model may answer.
"""

from __future__ import annotations

from typing import Any

import pytest

agents = pytest.importorskip("agents", reason="openai-agents is not installed (pip install openai-agents)")

CALLED: list[str] = []


@agents.function_tool
def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: The city's name.
    """
    CALLED.append(f"weather:{city}")
    return f"It is sunny and 21 degrees in {city}."


@agents.function_tool
def get_time(city: str) -> str:
    """Get the local time in a city.

    Args:
        city: The city's name.
    """
    CALLED.append(f"time:{city}")
    return f"It is 10:30 in {city}."


@pytest.fixture(scope="module", autouse=True)
def _no_tracing() -> None:
    # Tracing would post to OpenAI's cloud.
    agents.set_tracing_disabled(True)


def _agent(base_url: str) -> Any:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)
    return agents.Agent(
        name="weather",
        instructions="You answer questions about the weather with the tools you have.",
        tools=[get_weather, get_time],
        model=agents.OpenAIResponsesModel(model="smollm2-135m", openai_client=client),
        model_settings=agents.ModelSettings(tool_choice="required", max_tokens=64, temperature=0),
    )


async def test_a_run_calls_a_tool_and_ends_with_an_answer(base_url: str) -> None:
    CALLED.clear()
    result = await agents.Runner.run(_agent(base_url), "What is the weather in Paris?", max_turns=6)
    assert CALLED and CALLED[0].startswith(("weather:", "time:"))
    calls = [item for item in result.new_items if item.type == "tool_call_item"]
    outputs = [item for item in result.new_items if item.type == "tool_call_output_item"]
    assert calls and len(outputs) == len(calls)
    assert isinstance(result.final_output, str) and result.final_output.strip()
    assert "<tool_call>" not in result.final_output and "{" not in result.final_output


async def test_a_streamed_run_does_the_same(base_url: str) -> None:
    CALLED.clear()
    run = agents.Runner.run_streamed(_agent(base_url), "What is the time in Rome?", max_turns=6)
    kinds = []
    async for event in run.stream_events():
        if event.type == "run_item_stream_event":
            kinds.append(event.item.type)
    assert CALLED and "tool_call_item" in kinds and "tool_call_output_item" in kinds
    assert kinds[-1] == "message_output_item"
    assert isinstance(run.final_output, str) and run.final_output.strip()
