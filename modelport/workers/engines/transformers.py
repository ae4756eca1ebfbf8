"""Batching for the ``transformers`` kind: concurrent requests share one ``generate`` call.

One owner thread per loaded model gathers the requests that arrive together (up to
``n_parallel``, within ``batch_wait_s`` of the first), left-pads their prompts and decodes them
together, one forward pass a step over a shared ``DynamicCache``. Each row keeps its own
sampling (temperature, top-k, top-p, min-p, penalties, logit bias, seed and an xgrammar matcher
for JSON constraints). A row that ends, reaches its ``max_tokens`` or is cancelled leaves the
batch (and the cache) at the next step, so the rows still running stop paying for it; the losing
branch of an auto-mode answer costs nothing once the decision is made. Requests that arrive while
a batch runs wait for the next one.

A JSON-constrained row drafts: it feeds the tokens it will likely pick next (what the last answer
under its grammar picked, else the text the grammar forces) in the same step, and keeps each only
where its own pick agrees, so a greedy answer is the same with or without drafts and a sampled
one keeps its distribution. An auto-mode call branch that has scored its window waits outside
the batch (``transformers_cache``) until its free sibling ends or is cancelled.
"""

from __future__ import annotations

import collections
import inspect
import queue
import threading
from collections.abc import Callable
from typing import Any

from modelport.workers.engines.handoff import Handoff, gather
from modelport.workers.engines.prefix import common_prefix
from modelport.workers.engines.transformers_cache import BatchRows, ParkedRow
from modelport.workers.engines.transformers_sampler import TransformersSampler
from modelport.workers.local.constrained.budget_closer import BudgetCloser
from modelport.workers.local.generation import GenerationParams

__all__ = ["TransformersEngine", "TransformersJob"]

_REMEMBERED = 64  # tokens of a constrained answer kept as a draft for the next
_GRAMMARS_REMEMBERED = 32
# Positions one step computes at most, drafts included (two rows draft 16 tokens, eight draft 3).
_STEP_POSITIONS = 34
# A prefix all of a batch's prompts share is computed once from this many tokens: below that,
# the extra forward pass costs more than the rows it spares.
_MIN_SHARED_PREFIX = 32


class TransformersJob(Handoff[int]):
    """One request's row: its prompt and settings, and its token hand-off."""

    def __init__(
        self, prompt: list[int], params: GenerationParams, grammar: Any, closer: BudgetCloser | None = None
    ) -> None:
        super().__init__()
        self.prompt = prompt
        self.params = params
        self.grammar = grammar
        self.closer = closer
        self.generated: list[int] = []
        self.scores: list[float] = []  # log probability of each pick, when params.score
        self.probed: list[float] = []  # params.probe's log probabilities at the first pick
        self.siblings: list[TransformersJob] = []  # the rows submitted together with this one
        self.cached_tokens = 0  # prompt tokens computed once for another row of the batch
        self.parked = False  # set aside by the batcher, waiting for its siblings

    def waits(self) -> bool:
        """Whether this row holds after its scored window while a sibling still runs."""
        if not self.params.hold_after_score or len(self.scores) < self.params.score:
            return False
        return any(s is not self and not (s.done or s.parked or s.cancelled.is_set()) for s in self.siblings)


class TransformersEngine:
    """Runs ``model.generate`` over batches of concurrent requests on one owner thread.

    Args:
        model: The loaded causal LM.
        pad_id: Token used to left-pad prompts.
        eos_ids: Tokens that end an answer.
        n_parallel: Rows in one batch at most.
        batch_wait_s: How long the first request of a batch waits for others to join it.
        tokenize: Text to token ids, for drafting the text a grammar forces; ``None`` drafts nothing.
        max_draft: Drafted tokens verified in one step at most (0 drafts nothing).
    """

    def __init__(
        self,
        model: Any,
        *,
        pad_id: int,
        eos_ids: set[int],
        n_parallel: int,
        batch_wait_s: float,
        tokenize: Callable[[str], list[int]] | None = None,
        max_draft: int = 16,
    ) -> None:
        import torch

        self._torch = torch
        self._model = model
        self._pad = pad_id
        self._eos = eos_ids
        self.n_parallel = n_parallel
        self.batch_wait_s = batch_wait_s
        self._tokenize = tokenize
        self.max_draft = max_draft
        # Grammar id -> (grammar, the start of the last answer under it), oldest first.
        self._recent: dict[int, tuple[Any, list[int]]] = {}
        self._inbox: queue.Queue[list[TransformersJob] | None] = queue.Queue()
        # transformers 5.x renames ``past_key_values`` to ``cache`` (the old name warns, then goes).
        forward = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward else "past_key_values"
        # Only the last positions' logits are read; models that cannot say so compute them all.
        self._keeps_logits = "logits_to_keep" in forward
        # Batches run so far, by rows (a Counter, not a list: a long-running server grows none).
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        # Decode steps by rows in the step (prefills not counted).
        self.steps: collections.Counter[int] = collections.Counter()
        self.prefilled = 0  # prompt tokens computed (a shared prefix counts once)
        defaults = model.generation_config
        self._defaults = {
            "do_sample": bool(getattr(defaults, "do_sample", False)),
            "temperature": getattr(defaults, "temperature", None),
            "top_p": getattr(defaults, "top_p", None),
            "top_k": getattr(defaults, "top_k", None),
        }
        self._thread = threading.Thread(target=self._run, name="modelport-transformers", daemon=True)
        self._thread.start()

    def submit(
        self, prompt: list[int], params: GenerationParams, grammar: Any = None, closer: BudgetCloser | None = None
    ) -> TransformersJob:
        """Queues one request; read its tokens with ``TransformersJob.results``."""
        row = TransformersJob(prompt, params, grammar, closer)
        self._inbox.put([row])
        return row

    def submit_together(
        self, requests: list[tuple[list[int], GenerationParams, Any, BudgetCloser | None]]
    ) -> list[TransformersJob]:
        """Queues requests that must share a batch (the branches of one auto-mode answer)."""
        rows = [TransformersJob(*request) for request in requests]
        for row in rows:
            row.siblings = rows
        self._inbox.put(rows)
        return rows

    def close(self) -> None:
        """Stops the owner thread after its current batch."""
        self._inbox.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        carry: list[TransformersJob] | None = None
        while True:
            first = carry if carry is not None else self._inbox.get()
            if first is None:
                return
            groups, carry, stop = gather(
                self._inbox, first, size=len, limit=max(self.n_parallel, len(first)), wait_s=self.batch_wait_s
            )
            rows = [row for group in groups for row in group]
            for row in [r for r in rows if r.cancelled.is_set()]:
                row.finish(False)
            rows = [r for r in rows if not r.done]
            if rows:
                try:
                    self._generate(rows)
                except BaseException as error:  # noqa: BLE001 - every row's consumer gets it
                    for row in rows:
                        row.finish(False, error)
            if stop:
                return

    def _generate(self, rows: list[TransformersJob]) -> None:
        """Decodes the batch step by step; rows that end (or are cancelled) leave it at once.

        Identical prompts (the two branches of an auto-mode answer) are computed once and their
        cache rows copied; so is a prefix every prompt shares (a long system prompt, the same
        retrieved context). Sampling runs on the CPU (one copy of a step's logits): grammar
        bitmasks, seeded generators and per-row Python logic all live there, whatever device the
        model is on. A constrained row feeds a draft of its likely next tokens in the same step,
        and keeps each drafted token only if its own pick agrees; a row that has
        scored its window and holds for its siblings waits outside the batch until they end.
        """
        from transformers import DynamicCache

        torch = self._torch
        self.batch_sizes[len(rows)] += 1
        device = self._model.device
        unique: dict[tuple[int, ...], int] = {}
        source = [unique.setdefault(tuple(row.prompt), len(unique)) for row in rows]
        prompts = list(unique)
        cache = DynamicCache(config=self._model.config)
        samplers = [TransformersSampler(torch, row, self._defaults) for row in rows]
        with torch.inference_mode():
            shared = self._shared_prefix(prompts, cache)
            for row, unique_index in zip(rows, source, strict=True):
                # The first prompt computed the shared prefix; the others reused it. (A copy of
                # an identical prompt reports as its original: the branches of one request.)
                row.cached_tokens = shared if unique_index else 0
            width = max(len(p) for p in prompts) - shared
            ids = torch.full((len(prompts), width), self._pad, dtype=torch.long)
            mask = torch.zeros((len(prompts), width), dtype=torch.long)
            for i, prompt in enumerate(prompts):
                ids[i, width - len(prompt) + shared :] = torch.tensor(prompt[shared:], dtype=torch.long)
                mask[i, width - len(prompt) + shared :] = 1
            ids, mask = ids.to(device), mask.to(device)
            # Each prompt's rest sits right-aligned after the shared slots; the gap is masked.
            positions = shared + (mask.cumsum(-1) - 1).clamp(min=0)
            mask = torch.cat([mask.new_ones((len(prompts), shared)), mask], dim=1)
            logits = self._forward(ids, mask, positions, cache, 1)
            self.prefilled += sum(len(p) - shared for p in prompts)
            if len(prompts) < len(rows):
                index = torch.tensor(source, device=device)
                cache.batch_select_indices(index)
                logits, mask, positions = logits[index], mask[index], positions[index]
            batch = BatchRows(torch, cache, mask, positions[:, -1].clone())
            live = list(range(len(rows)))  # batch row -> index in ``rows``
            feeds: list[list[int]] = [[row.prompt[-1]] for row in rows]  # the prefill: one logit row each
            parked: list[ParkedRow] = []
            while True:
                host = logits.float().cpu()
                for b, r in enumerate(live):
                    row = rows[r]
                    if row.done or row.cancelled.is_set():
                        row.finish(False)
                        continue
                    batch.settle(b, self._verify(samplers[r], row, host[b], feeds[b]), len(feeds[b]))
                live = self._regroup(rows, live, batch, parked)
                if not live:
                    return
                # Every row computes the step's full width: the more rows, the shorter the drafts.
                room = min(self.max_draft, _STEP_POSITIONS // len(live) - 1) if batch.surgical else 0
                feeds = [[rows[r].generated[-1], *self._draft(samplers[r], room)] for r in live]
                ids, mask, positions = batch.step(feeds, self._pad)
                self.steps[len(live)] += 1
                logits = self._forward(ids, mask, positions, cache, batch.width)

    def _shared_prefix(self, prompts: list[tuple[int, ...]], cache: Any) -> int:
        """Computes the prefix all ``prompts`` share into ``cache``, once, copied to each row.

        Returns:
            Its length in tokens: 0 (nothing computed) for a single prompt or a short prefix.
            Every prompt keeps at least its last token to compute, for its first logits.
        """
        if len(prompts) < 2:
            return 0
        shared = min(min(common_prefix(prompts[0], p) for p in prompts[1:]), min(len(p) for p in prompts) - 1)
        if shared < _MIN_SHARED_PREFIX:
            return 0
        torch = self._torch
        device = self._model.device
        ids = torch.tensor([prompts[0][:shared]], dtype=torch.long, device=device)
        mask = torch.ones_like(ids)
        positions = torch.arange(shared, device=device)[None]
        self._forward(ids, mask, positions, cache, 1)
        self.prefilled += shared
        cache.batch_repeat_interleave(len(prompts))
        return shared

    def _verify(self, sampler: TransformersSampler, row: TransformersJob, logits: Any, feed: list[int]) -> int:
        """Picks one token per fed position while the picks agree with the draft: how many were used."""
        for used, _ in enumerate(feed, start=1):
            token = sampler.pick(logits[used - 1])
            self._deliver(row, token)
            if row.done or (used < len(feed) and token != feed[used]):
                return used
        return len(feed)

    def _regroup(
        self, rows: list[TransformersJob], live: list[int], batch: BatchRows, parked: list[ParkedRow]
    ) -> list[int]:
        """Drops ended rows, parks rows that wait for siblings, and brings back those that may go on."""
        keep: list[int] = []
        for b, r in enumerate(live):
            row = rows[r]
            if row.done:
                self._remember(row)
                continue
            if batch.surgical and row.waits():
                row.parked = True
                parked.append(batch.take(b, r))
                continue
            keep.append(b)
        for waiting in list(parked):
            if rows[waiting.index].cancelled.is_set():
                rows[waiting.index].finish(False)
                self._remember(rows[waiting.index])
                parked.remove(waiting)
        back = [p for p in parked if not rows[p.index].waits()]
        if not keep and not back:
            back = list(parked)  # nothing left to wait for
        if len(keep) < len(live) and keep:
            batch.select(keep)
        live = [live[b] for b in keep]
        if back:
            batch.put_back(back, empty=not live)
            for returning in back:
                parked.remove(returning)
                rows[returning.index].parked = False
                live.append(returning.index)
        return live

    def _draft(self, sampler: TransformersSampler, room: int) -> list[int]:
        """Tokens a constrained row will likely pick next (a draft to verify), if any.

        First what the last row under the same grammar picked after the same tokens (the calls
        of one tool set open alike, split into tokens as the model splits them), else the text
        the grammar forces next, tokenized.
        """
        row = sampler.row
        room = min(room, row.params.max_new_tokens - len(row.generated) - 1)
        if sampler.matcher is None or room < 1:
            return []
        n = len(row.generated)
        earlier = self._recent.get(id(row.grammar), (None, []))[1]
        if len(earlier) > n and earlier[:n] == row.generated:
            return earlier[n : n + room]
        if self._tokenize is None:
            return []
        text = sampler.matcher.find_jump_forward_string()
        return self._tokenize(text)[:room] if text else []

    def _remember(self, row: TransformersJob) -> None:
        """Keeps the start of a constrained row's answer as the draft for the next under its grammar."""
        if row.grammar is None or not row.generated:
            return
        key = id(row.grammar)
        _, earlier = self._recent.pop(key, (None, []))
        start = row.generated[:_REMEMBERED]
        if earlier[: len(start)] == start:
            start = earlier  # the longer of two answers that agree
        self._recent[key] = (row.grammar, start)  # the grammar is held, so its id stays unique
        while len(self._recent) > _GRAMMARS_REMEMBERED:
            self._recent.pop(next(iter(self._recent)))

    def _forward(self, ids: Any, mask: Any, positions: Any, cache: Any, keep: int) -> Any:
        """One forward pass over ``ids`` (appended to ``cache``): each row's last ``keep`` logits."""
        extra = {self._cache_arg: cache, **({"logits_to_keep": keep} if self._keeps_logits else {})}
        out = self._model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **extra)
        return out.logits[:, -keep:, :]

    def _deliver(self, row: TransformersJob, token: int) -> None:
        if token in self._eos:
            row.finish(True)
            return
        row.generated.append(token)
        row.put(token)
        if len(row.generated) >= row.params.max_new_tokens:
            row.finish(False)
