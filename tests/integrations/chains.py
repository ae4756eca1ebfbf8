"""Runnables that the config tests load by factory path."""

from langchain_core.runnables import Runnable, RunnableLambda


def echo() -> Runnable:
    return RunnableLambda(lambda messages: messages[-1].text)
