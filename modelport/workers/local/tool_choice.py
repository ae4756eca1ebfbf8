"""``tool_choice: "auto"`` on local models: the model's own probabilities decide whether to call.

Small models told about tools in a system prompt rarely open a call by themselves, even when one
fits. So when tools are offered in auto mode, two branches of the same prompt run side by side
in the engine's batch: the free answer, and a call constrained by the grammar that forced calls
use (so it always parses and validates). Over their first ``window`` tokens, the mean log
probability the model gives each branch's own picks is compared:

    margin = mean(call) - mean(free)        call when margin >= threshold

A call that fits the question copies its arguments from the prompt and scores close to the
free answer; a call the model has to invent arguments for scores far lower. The losing branch
is cancelled at once. The free answer's text is held back until the decision (``window`` tokens
at most), then streams as usual; a winning call streams from where it is.

A call cut short by ``max_tokens`` never wins: a call does not start when the budget cannot
close it. Nor does a call that only repeats one already answered since the user last spoke (the
result is in the context; small models in an agent loop would otherwise call forever): when the
conversation holds such answers, the decision waits for the call branch to finish.

Batching engines run the two branches in one batch; the call branch of the ``llama-cpp`` kind
starts once the free branch has decoded the prompt, and copies its KV cache rather than decoding
the prompt again. Where no answered call needs comparing, the call branch asks to be set aside
once its window is scored (``GenerationParams.hold_after_score``): the ``transformers`` batcher
then decodes the free answer alone until the decision, and brings the call back if it wins.
"""

from __future__ import annotations

import json
import logging
import queue
import statistics
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from modelport.core.errors import BadRequestError
from modelport.core.messages import AssistantMessage, ToolMessage, UserMessage
from modelport.core.request import ChatRequest
from modelport.workers.engines.handoff import LinkedStop
from modelport.workers.local.constrained.constraints import JsonConstraint
from modelport.workers.local.generation import GenerationParams, GenerationStats, Prompt

__all__ = [
    "DEFAULT_THRESHOLD",
    "DEFAULT_WINDOW",
    "AutoToolChoice",
    "Decision",
    "answered_calls",
    "canonical_arguments",
]

# Calibrated on the tool eval set with SmolLM2-135M (see benchmarks/RESULTS.md).
DEFAULT_THRESHOLD = -0.45
DEFAULT_WINDOW = 16

logger = logging.getLogger("modelport.tool_choice")

Generate = Callable[["Prompt", "GenerationParams", threading.Event, "GenerationStats"], Iterator[str]]
# Starts the free and the call branch (lazily, or both at once where the engine needs it).
Branches = Callable[
    [
        "Prompt",
        tuple["GenerationParams", "GenerationParams"],
        tuple[threading.Event, threading.Event],
        tuple["GenerationStats", "GenerationStats"],
    ],
    tuple[Iterator[str], Iterator[str]],
]


def canonical_arguments(arguments: str) -> str:
    """Arguments JSON in one spelling (sorted keys), or the text itself when it is not JSON."""
    try:
        return json.dumps(json.loads(arguments or "{}"), sort_keys=True, ensure_ascii=False)
    except ValueError:
        return arguments


def answered_calls(request: ChatRequest) -> frozenset[tuple[str, str]]:
    """The calls answered by a tool message since the last user message."""
    tail = []
    for message in reversed(request.messages):
        if isinstance(message, UserMessage):
            break
        tail.append(message)
    answered_ids = {m.tool_call_id for m in tail if isinstance(m, ToolMessage)}
    return frozenset(
        (call.name, canonical_arguments(call.arguments))
        for m in tail
        if isinstance(m, AssistantMessage)
        for call in m.tool_calls
        if call.id in answered_ids
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """How an auto-mode answer was decided (kept on ``GenerationStats.extra["tool_choice"]``).

    Attributes:
        call: Whether the call branch won.
        margin: Mean log probability of the call's tokens minus the free answer's, or ``None``
            when the call could not finish within the budget.
        tokens: How many tokens of each branch were compared.
    """

    call: bool
    margin: float | None
    tokens: int


@dataclass(frozen=True, slots=True)
class AutoToolChoice:
    """Decides between a constrained call and a free answer.

    Args:
        threshold: Smallest margin (mean log probability per token, call minus free) at which the
            call wins. Lower calls more often; ``-inf`` always calls, ``inf`` never does.
        window: Tokens of each branch compared.
        fork_after_prompt: Start the call branch once the free branch has decoded the prompt,
            so an engine that shares prompt caches computes the prompt once.
        answered: Calls already answered since the user's last message, as ``(name, arguments
            as canonical JSON)``; a call branch that only repeats them loses.
        parse: Reads the calls (same form) out of the call branch's text; needed with ``answered``.
    """

    threshold: float = DEFAULT_THRESHOLD
    window: int = DEFAULT_WINDOW
    fork_after_prompt: bool = False
    answered: frozenset[tuple[str, str]] = frozenset()
    parse: Callable[[str], list[tuple[str, str]]] | None = None

    def __post_init__(self) -> None:
        if self.window < 1:
            raise BadRequestError(f"must be at least 1, got {self.window}", param="tool_call_window")

    def run(
        self,
        generate: Generate,
        branches: Branches,
        prompt: Prompt,
        params: GenerationParams,
        call: JsonConstraint,
        halt: threading.Event,
        stats: GenerationStats,
    ) -> Iterator[str]:
        """Yields the winning branch's text pieces and fills ``stats`` with its figures."""
        if self.threshold == float("inf"):  # never call: no call branch to run
            yield from generate(prompt, params, halt, stats)
            return
        if self.threshold == float("-inf"):  # always call: no free branch to run
            yield from generate(prompt, replace(params, constraint=call), halt, stats)
            return
        free_stats, call_stats = GenerationStats(), GenerationStats()
        free_halt, call_halt = LinkedStop(halt), LinkedStop(halt)
        free, call_pieces = branches(
            prompt,
            (
                replace(params, score=self.window),
                # Without answered calls to compare, the decision needs only the window.
                replace(params, score=self.window, constraint=call, hold_after_score=not self.answered),
            ),
            (free_halt, call_halt),
            (free_stats, call_stats),
        )
        call_branch = _Branch(call_pieces, call_halt)
        if not self.fork_after_prompt:
            call_branch.start()
        held: list[str] = []
        decision: Decision | None = None
        try:
            for piece in free:
                if decision is None:
                    call_branch.start()
                    held.append(piece)
                    decision = self._decide(free_stats, False, call_branch, call_stats, params, wait=False)
                    if decision is None:
                        continue
                    if decision.call:
                        break
                    call_halt.set()
                    _adopt(stats, free_stats, decision)
                    yield from held
                    continue
                _adopt(stats, free_stats, decision)
                yield piece
            else:
                if decision is None:
                    call_branch.start()  # the free answer ended before the prompt was shared
                    decision = self._decide(free_stats, True, call_branch, call_stats, params, wait=True)
                    assert decision is not None
                    if not decision.call:
                        call_halt.set()
                        _adopt(stats, free_stats, decision)
                        yield from held
                if not decision.call:
                    _adopt(stats, free_stats, decision)
                    return
            free_halt.set()
            close = getattr(free, "close", None)
            if close is not None:
                close()
            for piece in call_branch.pieces():
                _adopt(stats, call_stats, decision)
                yield piece
            _adopt(stats, call_stats, decision)
        finally:
            free_halt.set()
            call_halt.set()
            call_branch.join()

    def _decide(
        self,
        free_stats: GenerationStats,
        free_done: bool,
        branch: _Branch,
        call_stats: GenerationStats,
        params: GenerationParams,
        *,
        wait: bool,
    ) -> Decision | None:
        while True:
            call_done = branch.done.is_set()
            if call_done and branch.error is not None:
                return Decision(False, None, 0)
            if call_done and not call_stats.eos and call_stats.tokens >= params.max_new_tokens:
                return Decision(False, None, 0)  # the budget cannot close a call
            n = self.window
            if free_done:
                n = min(n, len(free_stats.scores))
            if call_done:
                n = min(n, len(call_stats.scores))
            if n >= 1 and len(free_stats.scores) >= n and len(call_stats.scores) >= n:
                margin = statistics.fmean(call_stats.scores[:n]) - statistics.fmean(free_stats.scores[:n])
                decision = Decision(margin >= self.threshold, margin, n)
                if decision.call and self.answered and self.parse is not None:
                    if not call_done:
                        if not wait:
                            return None
                        branch.progress.wait(0.05)
                        branch.progress.clear()
                        continue
                    calls = self.parse(branch.text())
                    if calls and set(calls) <= self.answered:
                        decision = Decision(False, margin, n)
                logger.debug("tool choice: call=%s margin=%.4f tokens=%d", decision.call, margin, n)
                return decision
            if n < 1 and free_done and call_done:
                return Decision(False, None, 0)
            if not wait:
                return None
            branch.progress.wait(0.05)
            branch.progress.clear()


def _adopt(stats: GenerationStats, winner: GenerationStats, decision: Decision) -> None:
    stats.tokens, stats.eos, stats.cached_tokens = winner.tokens, winner.eos, winner.cached_tokens
    if len(stats.logprobs) < len(winner.logprobs):
        stats.logprobs.extend(winner.logprobs[len(stats.logprobs) :])
    stats.extra["tool_choice"] = decision


class _Branch:
    """The call branch, consumed by a thread of its own into a queue of text pieces."""

    def __init__(self, pieces: Iterator[str], halt: threading.Event) -> None:
        self._pieces = pieces
        self._halt = halt
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._text: list[str] = []
        self._thread: threading.Thread | None = None
        self.done = threading.Event()
        self.progress = threading.Event()
        self.error: BaseException | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="modelport-tool-call-branch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        pieces = self._pieces
        try:
            for piece in pieces:
                self._text.append(piece)
                self._queue.put(piece)
                self.progress.set()
                if self._halt.is_set():
                    break
        except BaseException as error:  # noqa: BLE001 - the free branch wins instead
            self.error = error
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # a generator's own cleanup cancels its engine job
            self.done.set()
            self.progress.set()
            self._queue.put(None)

    def text(self) -> str:
        """What the branch wrote so far."""
        return "".join(self._text)

    def pieces(self) -> Iterator[str]:
        while (piece := self._queue.get()) is not None:
            yield piece
        if self.error is not None:
            raise self.error

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
