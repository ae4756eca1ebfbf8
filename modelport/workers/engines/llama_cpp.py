"""Continuous batching for the ``llama-cpp`` kind: many sequences in one llama.cpp context.

One owner thread per loaded model runs every llama.cpp call on a context of its own, which
shares the loaded weights and keeps a separate KV cache for each of ``n_parallel`` sequences
(per-sequence KV keeps a greedy answer the same alone and in a batch). Each step builds one
batch: one token for every generating sequence, then chunks of waiting prompts up to the
``n_batch`` token budget, so a long prompt never stalls the other streams for its whole length.
Requests queue in the engine until a sequence is free; a cancelled request leaves the batch
within one step.

llama.cpp runs the sequences of one batch together only while their ids are consecutive (a
batch over ids 0, 2 and 5 becomes three passes over the weights), so a new request takes the
free sequence that keeps the running ids in the fewest runs, and each step lists its sequences in
id order.

A finished sequence keeps its KV cells. Among the sequences that keep the runs fewest, a new
request takes one whose whole cache starts its prompt (the next turn of a conversation), else
an empty one, else the least recently used, so the caches other conversations will want survive.
It reuses the longest prefix of its prompt cached by any sequence: in place, or by copying
that sequence's KV buffer into its own (one memory copy, far cheaper here than decoding the
prefix again). It drops the cells past that prefix and decodes only the rest (at least the last
prompt token, for its logits). llama.cpp computes each token's row the same whether a prompt is decoded whole
or in pieces, so a reused prefix changes nothing in the answer: a greedy answer never depends on
what ran before it.

Requests that arrive together compute a shared prefix once. A request whose prompt shares at
least ``n_batch`` more tokens with a sequence still prefilling than any cache holds follows that
sequence: it takes no prefill budget while the leader decodes the shared part (the leader is
ahead of it in the queue, so it would have waited as long anyway), then copies the leader's
cells and decodes only its own suffix.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelport.core.errors import EngineError
from modelport.core.events import TokenLogprob
from modelport.workers.engines.handoff import Handoff
from modelport.workers.engines.llama_cpp_sampler import LlamaCppSampler, SamplingSpec
from modelport.workers.engines.prefix import common_prefix
from modelport.workers.local.constrained.budget_closer import BudgetCloser

__all__ = ["EngineStats", "LlamaCppEngine", "LlamaCppJob", "exact_attention_v_type"]

logger = logging.getLogger("modelport.llama_cpp")


class LlamaCppJob(Handoff[tuple[int, TokenLogprob | None]]):
    """One sequence's request: its prompt and settings, and its ``(token, logprob)`` hand-off.

    Args:
        prompt: Prompt token ids.
        max_new_tokens: Tokens to generate at most.
        spec: How to sample.
        closer: Closes a JSON answer before the budget cuts it (constrained answers only).
    """

    def __init__(
        self, prompt: list[int], max_new_tokens: int, spec: SamplingSpec, closer: BudgetCloser | None = None
    ) -> None:
        super().__init__()
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.spec = spec
        self.closer = closer
        self.cached_tokens = 0  # prompt tokens whose KV cells were reused
        self.seq_id: int | None = None  # the engine's sequence, once admitted


@dataclass(slots=True)
class _Sequence:
    job: LlamaCppJob
    seq_id: int
    sampler: LlamaCppSampler
    fed: int = 0  # prompt tokens already in the KV cache
    generated: int = 0
    next_token: int | None = None  # sampled, not yet decoded
    kv: list[int] = field(default_factory=list)  # the tokens whose cells this sequence holds
    leader: _Sequence | None = None  # the sequence prefilling the prefix this one waits for
    share: int = 0  # how much of the leader's prompt this one takes


@dataclass(slots=True)
class EngineStats:
    """What the engine has done, for metrics and benchmarks."""

    steps: int = 0
    batched_tokens: int = 0
    cached_tokens: int = 0
    copied_prefixes: int = 0  # prefixes copied from another sequence's cache
    shared_prefixes: int = 0  # prefixes taken from a sequence that prefilled them meanwhile
    running: int = 0
    waiting: int = 0
    batch_sizes: collections.Counter[int] = field(default_factory=collections.Counter)


class LlamaCppEngine:
    """Runs up to ``n_parallel`` sequences at once on one model.

    Args:
        llm: The loaded ``llama_cpp.Llama``; its weights are shared, its context is not used.
        n_parallel: Sequences decoded together.
        n_ctx: Context of one sequence (prompt plus answer).
        n_batch: Token budget of one step (generating sequences first, then prompt chunks).
        n_threads: Threads for single-token steps.
        n_threads_batch: Threads for steps of several tokens.
        piece: Token id to text, for log probabilities.
        flash_attn: llama.cpp's flash-attention setting: -1 lets it decide (its server's
            default, on for CPUs), 0 turns it off, 1 on.
        type_v: The V cache's ggml type; ``None`` keeps the model context's (f16) without flash
            attention, and takes q8_0 with it (see ``exact_attention_v_type``).
    """

    # A cached prefix shorter than this is decoded again rather than copied from another
    # sequence: the copy moves the whole of a sequence's KV buffer.
    min_copied_prefix = 16

    def __init__(
        self,
        llm: Any,
        *,
        n_parallel: int,
        n_ctx: int,
        n_batch: int,
        n_threads: int,
        n_threads_batch: int,
        piece: Callable[[int], str],
        flash_attn: int = -1,
        type_v: int | None = None,
    ) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.n_parallel = n_parallel
        self.n_ctx = n_ctx
        self.n_batch = max(n_batch, n_parallel)
        self._piece = piece
        self._vocab = llm._model.vocab
        self._n_vocab = int(llm.n_vocab())
        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_ctx = n_parallel * n_ctx
        params.n_seq_max = n_parallel
        params.kv_unified = False
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_threads, params.n_threads_batch = n_threads, n_threads_batch
        params.embeddings = False
        params.no_perf = True
        params.flash_attn_type = flash_attn
        if type_v is not None:
            params.type_v = type_v
        elif flash_attn != 0:
            params.type_v = exact_attention_v_type(llama_cpp, int(params.type_k), int(params.type_v))
        self._ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
        if not self._ctx:
            raise EngineError(f"llama.cpp could not create a context of {n_parallel} x {n_ctx} tokens")
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        # Each sequence's context as llama.cpp rounded it (to a multiple of 256).
        self.n_ctx_seq = int(llama_cpp.llama_n_ctx_seq(self._ctx))
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._free = list(range(n_parallel))
        # What each sequence's KV cells hold, and when it was last used (for reuse and eviction).
        self._cached: dict[int, list[int]] = {i: [] for i in range(n_parallel)}
        self._used_at: dict[int, int] = dict.fromkeys(range(n_parallel), 0)
        self._admitted = 0
        self._active: list[_Sequence] = []
        self._inbox: collections.deque[LlamaCppJob] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self.stats = EngineStats()
        self._thread = threading.Thread(target=self._run, name="modelport-llama-engine", daemon=True)
        self._thread.start()

    def submit(
        self, prompt: list[int], max_new_tokens: int, spec: SamplingSpec, closer: BudgetCloser | None = None
    ) -> LlamaCppJob:
        """Queues a sequence; read its tokens with ``LlamaCppJob.results``."""
        job = LlamaCppJob(prompt, max_new_tokens, spec, closer)
        job._wake = self._wake
        with self._cond:
            if self._stopping:
                raise EngineError("the model is closing")
            self._inbox.append(job)
            self.stats.waiting = len(self._inbox)
            self._cond.notify()
        return job

    def kv_usage(self) -> float:
        """Fraction of the KV cells held by running sequences (read without a lock: a gauge)."""
        held = sum(len(sequence.kv) for sequence in list(self._active))
        return held / max(self.n_parallel * self.n_ctx_seq, 1)

    def kv_bytes(self) -> int:
        """Bytes of KV cache the context allocates: every sequence's (rounded) context of cells."""
        return int(self.n_parallel * self.n_ctx_seq * self.kv_bytes_per_token())

    def kv_bytes_per_token(self) -> int:
        """Bytes one cached token takes: K and V of every layer, in the cache's type."""
        lib = self._lib
        model = lib.llama_get_model(self._ctx)
        layers = int(lib.llama_model_n_layer(model))
        heads = int(lib.llama_model_n_head_kv(model))
        embd = int(lib.llama_model_n_embd(model))
        head_dim = embd // max(int(lib.llama_model_n_head(model)), 1)
        return 2 * layers * heads * head_dim * 2  # f16 K and V

    def close(self) -> None:
        """Stops the engine thread, fails what is still queued or running, and frees the context."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify()
        self._thread.join()
        lib = self._lib
        lib.llama_batch_free(self._batch)
        lib.llama_free(self._ctx)
        self._ctx = None

    # -- the engine thread ----------------------------------------------------------------------

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _run(self) -> None:
        try:
            while self._step():
                pass
        except BaseException as error:
            logger.exception("the llama.cpp engine stopped")
            self._fail_all(error)
        finally:
            closing = EngineError("the model was closed")
            self._fail_all(closing)

    def _fail_all(self, error: BaseException) -> None:
        with self._cond:
            jobs = list(self._inbox)
            self._inbox.clear()
        for sequence in list(self._active):
            self._release(sequence, False, error)
        for job in jobs:
            job.finish(False, error)

    def _step(self) -> bool:
        with self._cond:
            while not self._stopping and not self._active and not self._inbox:
                self._cond.wait()
            if self._stopping:
                return False
            self._admit()
        for sequence in [s for s in self._active if s.job.cancelled.is_set()]:
            self._release(sequence, False)
        for sequence in [s for s in self._active if s.leader is not None and s.leader.fed >= s.share]:
            self._take_shared(sequence, sequence.share)
        # One decode for every generating sequence (one token each), then each prompt chunk in a
        # call of its own. llama.cpp splits a mixed batch into equal-length pieces per sequence,
        # which would cut prompts differently from a solo run and change their numerics; kept
        # apart, every sequence computes exactly what it would alone.
        # A prompt with one token left (its prefix was cached: a branch, the next turn) joins
        # them: one token of one sequence computes the same wherever it is decoded.
        generating: list[_Sequence] = []
        items: list[tuple[int, int, int, bool]] = []
        for sequence in sorted(self._active, key=_by_id):
            prompt = sequence.job.prompt
            if sequence.next_token is not None:
                position = len(prompt) + sequence.generated - 1
                items.append((sequence.next_token, position, sequence.seq_id, True))
                sequence.kv.append(sequence.next_token)
                sequence.next_token = None
            elif sequence.fed == len(prompt) - 1:
                items.append((prompt[-1], sequence.fed, sequence.seq_id, True))
                sequence.kv.append(prompt[-1])
                sequence.fed += 1
            else:
                continue
            generating.append(sequence)
        if generating and self._decode(items, generating):
            for row, sequence in enumerate(generating):
                self._sample(sequence, row)
        budget = self.n_batch - len(generating)
        for sequence in [s for s in self._active if s.fed < len(s.job.prompt) and s.leader is None]:
            if budget <= 0:
                break
            prompt = sequence.job.prompt
            # Chunks start at multiples of n_batch, whatever else runs: the same cuts as alone.
            end = min(len(prompt), (sequence.fed // self.n_batch + 1) * self.n_batch)
            items = [(prompt[i], i, sequence.seq_id, i == len(prompt) - 1) for i in range(sequence.fed, end)]
            budget -= len(items)
            sequence.kv.extend(prompt[sequence.fed : end])
            sequence.fed = end
            if self._decode(items, [sequence]) and end == len(prompt):
                self._sample(sequence, len(items) - 1)
        return True

    def _pick(self, prompt: list[int]) -> tuple[int, int, int]:
        """Chooses a free sequence for ``prompt``, and where its cached prefix comes from.

        The sequence is a free one that keeps the running ids in the fewest runs; among those,
        one that loses nothing (its whole cache starts the prompt, longest first, or it is
        empty), else the least recently used. The prefix comes from whichever sequence caches
        the most of it (a free one, or a running one past its prompt), when that beats the
        chosen one's own by ``min_copied_prefix`` tokens. At least the last prompt token is
        always left to decode.

        Returns:
            The sequence, the sequence holding the prefix (the same one when reused in place),
            and how many prompt tokens the prefix covers.
        """
        running = {sequence.seq_id for sequence in self._active}
        shared = {seq_id: common_prefix(self._cached[seq_id], prompt) for seq_id in self._free}
        # A running sequence lends what its cells hold (a second branch of one prompt, or the
        # part of a long prompt prefilled so far); the copy is taken before the next decode.
        lenders = {s.seq_id: common_prefix(s.kv, prompt) for s in self._active}

        def runs(seq_id: int) -> int:
            ids = running | {seq_id}
            return sum(1 for i in ids if i - 1 not in ids)

        def rank(seq_id: int) -> tuple[int, bool, int, int]:
            loses = shared[seq_id] < len(self._cached[seq_id])
            return runs(seq_id), loses, 0 if loses else -shared[seq_id], self._used_at[seq_id]

        target = min(self._free, key=rank)
        donor = max(self._free, key=lambda i: (shared[i], -self._used_at[i]))
        lender = max(lenders, key=lambda i: lenders[i], default=None)
        if lender is not None and lenders[lender] > shared[donor]:
            donor, shared[lender] = lender, lenders[lender]
        if shared[donor] < shared[target] + self.min_copied_prefix:
            donor = target
        return target, donor, min(shared[donor], len(prompt) - 1)

    def _decode(self, items: list[tuple[int, int, int, bool]], sequences: list[_Sequence]) -> bool:
        """Decodes ``(token, position, sequence, wants logits)`` items; on failure ends ``sequences``."""
        batch = self._batch
        for n, (token, pos, seq_id, logits) in enumerate(items):
            batch.token[n] = token
            batch.pos[n] = pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = seq_id
            batch.logits[n] = logits
        batch.n_tokens = len(items)
        code = int(self._lib.llama_decode(self._ctx, batch))
        if code != 0:
            failure = EngineError(f"llama.cpp could not decode a batch (code {code})")
            for sequence in sequences:
                sequence.kv.clear()  # what the failed call left in the cells is unknown
                self._release(sequence, False, failure)
            return False
        self.stats.steps += 1
        self.stats.batched_tokens += len(items)
        self.stats.batch_sizes[len(sequences)] += 1
        return True

    def _admit(self) -> None:
        """Moves queued jobs onto free sequences (caller holds the lock)."""
        while self._inbox and self._free:
            job = self._inbox.popleft()
            if job.cancelled.is_set():
                job.finish(False)
                continue
            seq_id, donor, reuse = self._pick(job.prompt)
            self._free.remove(seq_id)
            self._admitted += 1
            self._used_at[seq_id] = self._admitted
            if donor != seq_id:
                # Copies the donor's whole KV buffer (llama.cpp does it before the next decode);
                # the donor keeps its own cells for later requests.
                self._lib.llama_memory_seq_cp(self._mem, donor, seq_id, -1, -1)
                self.stats.copied_prefixes += 1
            # Keep exactly the prompt's first ``reuse`` tokens; the last prompt token is always
            # decoded again, since its logits pick the first answer token.
            self._lib.llama_memory_seq_rm(self._mem, seq_id, reuse, -1)
            self._cached[seq_id] = []
            sampler = LlamaCppSampler(self._lib, self._vocab, self._n_vocab, job.spec, self._piece, self.n_ctx_seq)
            sequence = _Sequence(job, seq_id, sampler, fed=reuse, kv=job.prompt[:reuse])
            self._follow(sequence)
            self._active.append(sequence)
            job.cached_tokens = reuse
            job.seq_id = seq_id
            self.stats.cached_tokens += reuse
        self.stats.waiting = len(self._inbox)
        self.stats.running = len(self._active)

    def _follow(self, sequence: _Sequence) -> None:
        """Makes ``sequence`` wait for the running sequence that will prefill most of its prompt.

        Only when that saves at least ``n_batch`` tokens over the prefix it starts with: a
        shorter wait is not worth a copy of the leader's KV buffer.
        """
        prompt = sequence.job.prompt
        best, share = None, sequence.fed + self.n_batch - 1
        for other in self._active:
            common = min(common_prefix(other.job.prompt, prompt), len(prompt) - 1)
            if common > share and other.fed < common:
                best, share = other, common
        if best is not None:
            sequence.leader, sequence.share = best, share

    def _take_shared(self, sequence: _Sequence, upto: int) -> None:
        """Ends ``sequence``'s wait: copies its leader's first ``upto`` prompt tokens, if worth it."""
        leader, sequence.leader = sequence.leader, None
        if leader is None or upto < sequence.fed + self.min_copied_prefix:
            return
        self._lib.llama_memory_seq_cp(self._mem, leader.seq_id, sequence.seq_id, -1, -1)
        self._lib.llama_memory_seq_rm(self._mem, sequence.seq_id, upto, -1)
        self.stats.cached_tokens += upto - sequence.fed
        self.stats.shared_prefixes += 1
        sequence.fed = sequence.job.cached_tokens = upto
        sequence.kv = sequence.job.prompt[:upto]

    def _sample(self, sequence: _Sequence, row: int) -> None:
        job = sequence.job
        closer = job.closer
        try:
            forced = closer.next(job.max_new_tokens - sequence.generated) if closer is not None else None
            token, logprob = sequence.sampler.sample(self._ctx, row, forced)
            if closer is not None:
                closer.took(token, forced)
        except BaseException as error:  # noqa: BLE001 - handed to this request's consumer
            self._release(sequence, False, error)
            return
        if self._lib.llama_vocab_is_eog(self._vocab, token):
            self._release(sequence, True)
            return
        sequence.generated += 1
        job.put((token, logprob))
        if sequence.generated >= job.max_new_tokens or job.cancelled.is_set():
            self._release(sequence, False)
        else:
            sequence.next_token = token

    def _release(self, sequence: _Sequence, eos: bool, error: BaseException | None = None) -> None:
        """Ends a sequence: frees its samplers and tells its consumer; its cells stay for reuse."""
        if sequence in self._active:
            self._active.remove(sequence)
            # Whoever waited for this sequence's prefix takes what it got, and prefills the rest.
            for follower in [s for s in self._active if s.leader is sequence]:
                self._take_shared(follower, min(common_prefix(sequence.kv, follower.job.prompt), follower.share))
            if not sequence.kv:
                self._lib.llama_memory_seq_rm(self._mem, sequence.seq_id, -1, -1)
            self._cached[sequence.seq_id] = sequence.kv
            sequence.sampler.close()
            with self._cond:
                self._free.append(sequence.seq_id)
                self._free.sort()
                self.stats.running = len(self._active)
        sequence.job.finish(eos, error)


def exact_attention_v_type(lib: Any, type_k: int, type_v: int) -> int:
    """The V cache type that keeps flash attention's answers independent of the batch.

    ggml's CPU flash attention picks its kernel by the shape of each call: KV split across
    threads for one query row of one sequence over 512 cells or more, tiles for 64 query rows
    or more, one row at a time otherwise. Each sums in its own order, so the same token's
    logits came out different alone, in a batch, and after a cached prefix, and greedy answers
    changed with what else ran. Both fast kernels require K and V of one type, f16 or f32; a
    q8_0 V cache keeps every call on the row-at-a-time kernel (and halves V's memory).

    Args:
        lib: The ``llama_cpp`` module.
        type_k: The K cache's ggml type.
        type_v: The V cache's ggml type as configured.

    Returns:
        ``type_v``, or q8_0 in place of an f16 or f32 V cache with a K of its type.
    """
    plain = {int(lib.GGML_TYPE_F16), int(lib.GGML_TYPE_F32)}
    if type_v in plain and type_k == type_v:
        return int(lib.GGML_TYPE_Q8_0)
    return type_v


def _by_id(sequence: _Sequence) -> int:
    return sequence.seq_id
