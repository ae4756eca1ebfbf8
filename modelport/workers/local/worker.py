"""The shared pipeline of in-process chat workers.

A local worker only renders a prompt and yields decoded text pieces. Everything
else (context checks, stop strings, the output parser that finds tool calls,
finish reasons, usage, n choices, async bridging, one-at-a-time access) lives
here, so every local backend behaves the same.
"""

from __future__ import annotations

import contextlib
import threading
from abc import abstractmethod
from collections.abc import AsyncIterator, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, ClassVar, Literal

from modelport.core.capabilities import Capabilities
from modelport.core.errors import BadRequestError, ContextLengthExceededError
from modelport.core.events import Finish, FinishReason, StreamEvent, TextDelta, TokenLogprob, ToolCallDelta, Usage
from modelport.core.request import ChatRequest
from modelport.core.rerank import RerankRequest, RerankResult
from modelport.workers.base import ChatWorker, RerankWorker
from modelport.workers.engines.bridge import iterate_in_thread
from modelport.workers.engines.handoff import LinkedStop
from modelport.workers.local.generation import GenerationParams, GenerationStats, Prompt
from modelport.workers.local.incremental_text import StopMatcher
from modelport.workers.local.judge import ChatJudge
from modelport.workers.local.output_parser import OutputParser, output_parser_for
from modelport.workers.local.profiles import DEFAULT_PROFILE, ModelProfile, profile_for
from modelport.workers.local.prompting import template_inputs
from modelport.workers.local.tool_choice import DEFAULT_THRESHOLD, AutoToolChoice, answered_calls, canonical_arguments
from modelport.workers.local.tool_parsers.base import ToolParser, get_tool_parser

__all__ = ["LocalChatWorker"]


class _LogprobAttacher:
    """Hangs the engine's per-token log probabilities on the text deltas that carry those tokens.

    Tokens and text do not line up one to one (stop strings hold text back, bytes of one
    character span tokens), so each delta takes every entry recorded since the last one.
    """

    def __init__(self, recorded: list[TokenLogprob]) -> None:
        self._recorded = recorded
        self._sent = 0

    def __call__(self, events: Iterable[StreamEvent]) -> Iterator[StreamEvent]:
        for event in events:
            if isinstance(event, TextDelta) and len(self._recorded) > self._sent:
                fresh = tuple(self._recorded[self._sent :])
                self._sent = len(self._recorded)
                event = replace(event, logprobs=event.logprobs + fresh)
            yield event


class LocalChatWorker(ChatWorker, RerankWorker):
    """Base class of workers that run a model in this process.

    Subclasses implement ``_render``, ``_generate`` and set ``max_context``.

    Args:
        max_concurrency: Requests generating at once, for engines that run one at a time.
        n_parallel: For engines that batch: requests they generate together. They queue and
            schedule requests themselves, so no lock is taken here; sets ``parallelism``.
        tool_parser: Override the tool-call parser chosen by the model's profile.
        context_overflow: ``"clamp"`` shortens a ``max_tokens`` that does not fit after the
            prompt (the answer then ends with ``length``); ``"error"`` refuses it.
        tool_call_threshold: In ``auto`` tool mode, the margin at which a constrained call beats
            a free answer (see ``modelport.workers.local.tool_choice``); requests may override it.
    """

    max_context: int = 2048
    # Engines that fill ``GenerationStats.logprobs`` when asked set this.
    records_logprobs: ClassVar[bool] = False
    # Engines that fill ``GenerationStats.probed`` (``GenerationParams.probe``) set this: the
    # worker then reranks by judging (``modelport.workers.local.judge``).
    records_probes: ClassVar[bool] = False
    # The optional sampling fields (``SAMPLING_FIELDS``) the engine applies.
    sampling_fields: ClassVar[frozenset[str]] = frozenset()
    capabilities = Capabilities(tools=True, tool_call_streaming=True, tool_choice=True, structured_output=True)
    # Engines that share a prompt's cache between sequences start an auto-mode call branch once
    # the free branch has decoded the prompt; the others start both branches together.
    forks_prompt: ClassVar[bool] = False

    def __init__(
        self,
        *,
        max_concurrency: int = 1,
        n_parallel: int | None = None,
        tool_parser: str | None = None,
        context_overflow: Literal["clamp", "error"] = "clamp",
        tool_call_threshold: float = DEFAULT_THRESHOLD,
        rerank_prompt: str | None = None,
    ) -> None:
        if context_overflow not in ("clamp", "error"):
            raise BadRequestError("must be 'clamp' or 'error'", param="context_overflow")
        if n_parallel is not None and (
            isinstance(n_parallel, bool) or not isinstance(n_parallel, int) or n_parallel < 1
        ):
            raise BadRequestError(f"must be a positive integer, got {n_parallel!r}", param="n_parallel")
        self.context_overflow = context_overflow
        self.tool_call_threshold = float(tool_call_threshold)
        self.n_parallel = n_parallel
        self.parallelism = n_parallel
        # Engines that are not re-entrant queue requests here rather than racing on the model;
        # batching engines queue them themselves.
        self._slots: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if n_parallel else threading.Semaphore(max_concurrency)
        )
        # Long-lived threads for the async path: a new thread per request would rebuild the
        # engine's OpenMP thread team each time, which costs tens of milliseconds of TTFT. With a
        # batching engine these threads only wait for their request's tokens.
        self._threads = ThreadPoolExecutor(
            max_workers=n_parallel + 2 if n_parallel else max_concurrency, thread_name_prefix="modelport-generate"
        )
        self._tool_parser_override = tool_parser
        self.profile: ModelProfile = DEFAULT_PROFILE
        self.tool_parser: type[ToolParser] = get_tool_parser(tool_parser or DEFAULT_PROFILE.tool_parser)
        self.native_tools = False
        self.rerank_prompt = rerank_prompt
        self._judge: ChatJudge | None = None

    def _configure(self, *, template: str, name: str, max_context: int) -> None:
        """Sets the context window, the family profile and the tool format once the model is loaded."""
        self.max_context = max_context
        self.profile = profile_for(template, name)
        self.tool_parser = get_tool_parser(self._tool_parser_override or self.profile.tool_parser)
        self.native_tools = "tools" in template
        self.capabilities = replace(
            LocalChatWorker.capabilities,
            max_context=max_context,
            logprobs=self.records_logprobs,
            sampling=self.sampling_fields,
            raw_prompts=type(self)._tokenize_raw is not LocalChatWorker._tokenize_raw,
            rerank=self.records_probes,
            max_pair_tokens=max_context if self.records_probes else None,
        )
        if self.records_probes:
            self._judge = ChatJudge(
                render=self._render,
                generate=self._generate,
                tokenize=self._tokenize_plain,
                max_context=max_context,
                threads=self._threads,
                slots=self._slots,
                prompt=self.rerank_prompt,
            )

    def _template_inputs(self, request: ChatRequest) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        return template_inputs(request, self.tool_parser(), native_tools=self.native_tools)

    @abstractmethod
    def _render(self, request: ChatRequest) -> Prompt:
        """Renders the chat (and tools) with the model's template and tokenises it."""

    def _tokenize_raw(self, text: str) -> list[int]:
        """Tokenises a raw prompt as the model's own server would (BOS where the model wants one).

        Engines that can set ``raw_prompts`` in their capabilities and override this.
        """
        raise BadRequestError("this model only takes chat messages", param="prompt")

    @abstractmethod
    def _generate(
        self, prompt: Prompt, params: GenerationParams, halt: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        """Yields decoded text pieces; stops soon after ``halt`` is set.

        The pieces must join to exactly the decoded completion.
        """

    def _tokenize_plain(self, text: str) -> list[int]:
        """Text to token ids as plain text: no BOS, special tokens not read as such."""
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text`` for this model."""
        raise NotImplementedError

    def score(self, request: RerankRequest) -> RerankResult:
        """The probability the model answers "yes" to a judging prompt, per document.

        Raises:
            BadRequestError: If the engine cannot probe (naming ``model``), or a pair's prompt
                passes the context (naming ``documents[i]``).
        """
        if self._judge is None:
            raise BadRequestError("this model cannot rerank", param="model")
        return self._judge.score(request)

    def count_input_tokens(self, request: ChatRequest) -> int | None:
        """The prompt's tokens: the request rendered and tokenized as generation does it."""
        if request.raw_prompt is not None:
            return len(self._tokenize_raw(request.raw_prompt))
        return len(self._render(request).ids)

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Streams the answer; closing the iterator stops generation."""
        cancel = threading.Event()
        try:
            yield from self._events(request, cancel)
        finally:
            cancel.set()

    def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Streams from a worker thread; the event loop never waits on the model."""
        return iterate_in_thread(lambda cancel: self._events(request, cancel), self._threads)

    def close(self) -> None:
        """Stops the async path's threads once their work is done."""
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _budget(self, request: ChatRequest, prompt: Prompt) -> int:
        """Tokens the answer may take: ``max_tokens``, or what fits after the prompt.

        A prompt that leaves no room is refused (naming ``messages``). A ``max_tokens`` beyond
        the room is clamped to it, as llama.cpp's server and Ollama do, unless the worker was
        built with ``context_overflow="error"`` (then refused naming ``max_tokens``).
        """
        room = self.max_context - len(prompt.ids)
        if room <= 0:
            raise ContextLengthExceededError(prompt_tokens=len(prompt.ids), max_context=self.max_context)
        if request.max_tokens is not None and request.max_tokens > room:
            if self.context_overflow == "error":
                raise ContextLengthExceededError(
                    prompt_tokens=len(prompt.ids), max_context=self.max_context, max_tokens=request.max_tokens
                )
            return room
        return request.max_tokens if request.max_tokens is not None else room

    def _output(self, request: ChatRequest) -> OutputParser:
        return output_parser_for(request, self.tool_parser)

    def _events(self, request: ChatRequest, cancel: threading.Event) -> Iterator[StreamEvent]:
        self.check_request(request)
        if request.raw_prompt is not None:
            prompt = Prompt(self._tokenize_raw(request.raw_prompt), request.raw_prompt)
        else:
            prompt = self._render(request)
        budget = self._budget(request, prompt)
        completion_tokens = 0
        cached_tokens = 0
        with self._slots:
            for choice in range(request.n):
                if cancel.is_set():
                    return
                output = self._output(request)
                params = GenerationParams.for_request(
                    request,
                    max_new_tokens=budget,
                    seed=None if request.seed is None else request.seed + choice,
                    constraint=output.constraint,
                )
                stats = GenerationStats()
                if request.echo:
                    yield TextDelta(prompt.text, choice=choice)
                reason = yield from self._one_choice(prompt, params, request, output, stats, cancel, choice)
                if reason is None:
                    return
                completion_tokens += stats.tokens
                cached_tokens = cached_tokens or stats.cached_tokens
                last = choice == request.n - 1
                usage = Usage(len(prompt.ids), completion_tokens, cached_tokens=cached_tokens) if last else None
                yield Finish(reason, usage, choice, stats.stop_sequence)

    def _pieces(
        self,
        prompt: Prompt,
        params: GenerationParams,
        request: ChatRequest,
        output: OutputParser,
        halt: threading.Event,
        stats: GenerationStats,
    ) -> Iterator[str]:
        """The engine's text pieces; in auto tool mode, of the branch the model prefers."""
        if output.auto_call is None or (self.n_parallel or 1) < 2:
            # Deciding runs two branches side by side: it needs an engine that batches.
            return self._generate(prompt, params, halt, stats)
        threshold = request.tool_call_threshold
        chooser = AutoToolChoice(
            threshold=self.tool_call_threshold if threshold is None else threshold,
            fork_after_prompt=self.forks_prompt,
            answered=answered_calls(request),
            parse=self._parse_calls,
        )
        return chooser.run(self._generate, self._branches, prompt, params, output.auto_call, halt, stats)

    def _parse_calls(self, text: str) -> list[tuple[str, str]]:
        parser = self.tool_parser()
        deltas = [e for e in [*parser.feed(text), *parser.finish()] if isinstance(e, ToolCallDelta)]
        calls: dict[int, list[str]] = {}
        for delta in deltas:
            calls.setdefault(delta.index, [delta.name or "", ""])[1] += delta.arguments
        return [(name, canonical_arguments(arguments)) for name, arguments in calls.values()]

    def _branches(
        self,
        prompt: Prompt,
        params: tuple[GenerationParams, GenerationParams],
        halts: tuple[threading.Event, threading.Event],
        stats: tuple[GenerationStats, GenerationStats],
    ) -> tuple[Iterator[str], Iterator[str]]:
        """Two generations of one prompt, for auto tool choice; each starts when first read.

        Engines whose batches form once (not continuously) override this to submit both at once.
        """
        return (
            self._generate(prompt, params[0], halts[0], stats[0]),
            self._generate(prompt, params[1], halts[1], stats[1]),
        )

    def _one_choice(
        self,
        prompt: Prompt,
        params: GenerationParams,
        request: ChatRequest,
        output: OutputParser,
        stats: GenerationStats,
        cancel: threading.Event,
        choice: int,
    ) -> Generator[StreamEvent, None, FinishReason | None]:
        stops = StopMatcher(request.stop)
        halt = LinkedStop(cancel)
        pieces = self._pieces(prompt, params, request, output, halt, stats)
        attach = _LogprobAttacher(stats.logprobs)
        try:
            for piece in pieces:
                if cancel.is_set():
                    return None
                text = stops.feed(piece)
                if text:
                    yield from attach(output.feed(text, choice))
                if stops.stopped or output.ended:
                    break
        finally:
            halt.set()
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        stats.stop_sequence = stops.matched
        tail = stops.flush()
        if tail:
            yield from attach(output.feed(tail, choice))
        yield from attach(output.finish(choice))
        cut = not stops.stopped and not output.ended and not stats.eos and stats.tokens >= params.max_new_tokens
        reason: FinishReason = "stop"
        # A call cut short by max_tokens ends with "length", as OpenAI's do; whole calls with
        # "tool_calls", even when the budget ran out just after them.
        if cut and (output.incomplete_calls or not output.tool_calls):
            reason = "length"
        elif output.tool_calls:
            reason = "tool_calls"
        return reason
