"""Every example runs, on the built-in models, offline."""

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(name: str) -> dict:
    return runpy.run_path(str(EXAMPLES / name))


def assert_sensible(answer: str, tool_result: str) -> None:
    """An agent's last answer: it uses the tool's result and echoes no markup or JSON."""
    assert tool_result in answer, answer
    for junk in ("<", ">", "{", "}", "tool_call", "call_", "tool_response"):
        assert junk not in answer, (junk, answer)


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
    assert_sensible(result["messages"][-1].text, "22 degrees")


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


def test_llama_index_function_agent_runs_its_tool() -> None:
    module = run("llama_index_agent.py")
    answer = module["main"]("What is the weather in Paris?")
    assert module["CALLS"] == ["get_weather(Paris)"]
    assert_sensible(answer, "22 degrees")


def test_llama_index_react_agent_answers() -> None:
    assert "5" in run("llama_index_react.py")["main"]("What is 2 plus 3?")


def test_llama_index_query_engine_cites_the_right_document() -> None:
    response = run("llama_index_rag.py")["main"]("How tall is the Harbour Lighthouse?")
    assert response.source_nodes[0].node.metadata["file_name"] == "lighthouse.md"
    assert "31" in str(response)
