"""Every example runs, on the built-in models, offline."""

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(name: str) -> dict:
    return runpy.run_path(str(EXAMPLES / name))


def test_quickstart_answers() -> None:
    assert "Paris" in run("quickstart.py")["main"]()


def test_agent_calls_its_tool() -> None:
    from langchain_core.messages import ToolMessage

    module = run("agent.py")
    result = module["main"]("What is the weather in Paris?")
    assert module["CALLS"] == ["get_weather(Paris)"]
    tool_messages = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert tool_messages and "22 degrees" in tool_messages[0].text
    assert result["messages"][-1].type == "ai"


def test_rag_answers_from_the_right_document() -> None:
    module = run("rag.py")
    retriever = module["build_retriever"]()
    sources = [d.metadata["source"] for d in retriever.invoke("How tall is the Harbour Lighthouse?")]
    assert sources[0] == "lighthouse.md"
    assert "31" in module["main"]("How tall is the Harbour Lighthouse?")


def test_swapping_the_model_is_a_change_of_name() -> None:
    answers = run("swap_model.py")["main"]("smollm2-135m", "smollm2-135m-hf")
    assert set(answers) == {"smollm2-135m", "smollm2-135m-hf"}
    assert all("Paris" in a for a in answers.values())
