"""Prometheus metrics for one app, in its own registry, named and bucketed after vLLM's.

Counters and histograms are fed from each finished ``RequestRecord``. The gauges (requests
running and waiting, batch sizes, KV cache use) are read from the limiter and the engines when
scraped, so they always say what is true now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from modelport.server.ops.tracking import GENERATING, SCORING, RequestRecord, is_api_path
from modelport.workers.base import EngineMetrics

__all__ = ["CONTENT_TYPE", "ServerMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# vLLM's buckets, so dashboards built for it read these too.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0)
LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
LOAD_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)

MODEL = ("model_name",)
# Request families also carry the alias a request matched ("" for the model's own name): the
# declared alias or glob pattern, never the raw name a client sent, whose values are unbounded.
REQUEST = ("model_name", "model_alias")


class _LiveCollector(Collector):
    """Reads the current state at scrape time."""

    def __init__(
        self,
        load: Callable[[], Mapping[str, tuple[int, int]]],
        engines: Callable[[], Mapping[str, EngineMetrics]],
        replicas: Callable[[], Mapping[str, list[tuple[str, str]]]],
        residency: Callable[[], tuple[int | None, list[tuple[str, bool, int]]]] | None = None,
    ) -> None:
        self._load = load
        self._engines = engines
        self._replicas = replicas
        self._residency = residency

    def collect(self) -> Iterator[Any]:
        running = GaugeMetricFamily("modelport_num_requests_running", "Requests holding a model slot.", labels=MODEL)
        waiting = GaugeMetricFamily("modelport_num_requests_waiting", "Requests queued for a slot.", labels=MODEL)
        for model, (run, wait) in sorted(self._load().items()):
            running.add_metric([model], run)
            waiting.add_metric([model], wait)
        yield running
        yield waiting
        batch = HistogramMetricFamily(
            "modelport_batch_size", "Sequences decoded together in one engine step.", labels=MODEL
        )
        kv = GaugeMetricFamily(
            "modelport_kv_cache_usage_perc",
            "Fraction of the KV cache held by running sequences (1 = full).",
            labels=MODEL,
        )
        for model, stats in sorted(self._engines().items()):
            buckets, cumulative, total = [], 0, 0
            sizes = sorted(stats.batch_sizes.items())
            for bound in BATCH_BUCKETS:
                cumulative = sum(n for size, n in sizes if size <= bound)
                buckets.append((str(float(bound)), cumulative))
            count = sum(n for _, n in sizes)
            total = sum(size * n for size, n in sizes)
            buckets.append(("+Inf", count))
            batch.add_metric([model], buckets, float(total))
            if stats.kv_cache_usage is not None:
                kv.add_metric([model], stats.kv_cache_usage)
        yield batch
        yield kv
        states = GaugeMetricFamily(
            "modelport_replica_state",
            "1 for each replica's current state (starting, ready, unhealthy, draining, stopped).",
            labels=(*MODEL, "replica", "state"),
        )
        for model, replicas in sorted(self._replicas().items()):
            for replica, state in replicas:
                states.add_metric([model, replica, state], 1)
        yield states
        if self._residency is not None:
            yield from self._memory()

    def _memory(self) -> Iterator[Any]:
        assert self._residency is not None
        budget, models = self._residency()
        loaded = GaugeMetricFamily("modelport_model_loaded", "1 while the model is loaded, else 0.", labels=MODEL)
        footprint = GaugeMetricFamily(
            "modelport_model_footprint_bytes",
            "Bytes the model counts against the memory budget while in memory (measured, else estimated).",
            labels=MODEL,
        )
        for model, is_loaded, size in sorted(models):
            loaded.add_metric([model], 1 if is_loaded else 0)
            footprint.add_metric([model], size)
        yield loaded
        yield footprint
        yield GaugeMetricFamily(
            "modelport_models_footprint_bytes",
            "Bytes the models in memory count against the budget together.",
            value=sum(size for _, _, size in models),
        )
        if budget is not None:
            yield GaugeMetricFamily(
                "modelport_memory_budget_bytes", "The server's memory budget (server.memory_budget).", value=budget
            )


class ServerMetrics:
    """The app's metrics and the registry they live in (none are module globals).

    Args:
        load: Running and waiting requests by model, read at scrape time.
        engines: Engine statistics of loaded models that batch, read at scrape time.
        replicas: Each replica set's replicas and their states, read at scrape time.
    """

    def __init__(
        self,
        load: Callable[[], Mapping[str, tuple[int, int]]],
        engines: Callable[[], Mapping[str, EngineMetrics]],
        replicas: Callable[[], Mapping[str, list[tuple[str, str]]]] = dict,
        residency: Callable[[], tuple[int | None, list[tuple[str, bool, int]]]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ttft = Histogram(
            "modelport_time_to_first_token_seconds",
            "Time from arrival to the first token.",
            REQUEST,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "modelport_inter_token_latency_seconds",
            "Time between successive streamed deltas.",
            REQUEST,
            buckets=ITL_BUCKETS,
            registry=r,
        )
        self.e2e = Histogram(
            "modelport_e2e_request_latency_seconds",
            "Time from arrival to the last byte.",
            REQUEST,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue = Histogram(
            "modelport_request_queue_time_seconds",
            "Time spent waiting for a model slot.",
            REQUEST,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter("modelport_prompt_tokens", "Prompt tokens processed.", REQUEST, registry=r)
        self.generation_tokens = Counter(
            "modelport_generation_tokens", "Completion tokens generated.", REQUEST, registry=r
        )
        self.success = Counter(
            "modelport_request_success",
            "Completions that finished, by finish reason.",
            (*REQUEST, "finished_reason"),
            registry=r,
        )
        self.failure = Counter(
            "modelport_request_failure",
            "API requests that failed, by HTTP status (499: the client left).",
            (*REQUEST, "status"),
            registry=r,
        )
        self.embedding_requests = Counter(
            "modelport_embedding_requests", "Embedding requests served.", REQUEST, registry=r
        )
        self.embedding_inputs = Counter("modelport_embedding_inputs", "Texts embedded.", REQUEST, registry=r)
        self.embedding_latency = Histogram(
            "modelport_embedding_latency_seconds",
            "Time from arrival to the answer of an embedding request.",
            REQUEST,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.rerank_requests = Counter(
            "modelport_rerank_requests", "Rerank and score requests served.", REQUEST, registry=r
        )
        self.rerank_pairs = Counter("modelport_rerank_pairs", "Query-document pairs scored.", REQUEST, registry=r)
        self.rerank_latency = Histogram(
            "modelport_rerank_latency_seconds",
            "Time from arrival to the answer of a rerank or score request.",
            REQUEST,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.load_seconds = Histogram(
            "modelport_model_load_seconds", "Time one model load took.", MODEL, buckets=LOAD_BUCKETS, registry=r
        )
        self.unloads = Counter(
            "modelport_model_unloads",
            "Models unloaded, by reason: keep_alive, budget (to make room), admin.",
            (*MODEL, "reason"),
            registry=r,
        )
        r.register(_LiveCollector(load, engines, replicas, residency))

    def observe(self, record: RequestRecord) -> None:
        """Counts one finished request (only API requests that name a model or fail)."""
        if not is_api_path(record.path) or record.method == "GET":
            return
        # A name no model answers to is labelled "": clients could send endless new ones.
        model = (record.model if record.model_known else "", record.alias or "")
        if record.status >= 400:
            self.failure.labels(*model, str(record.status)).inc()
            return
        if record.endpoint == "embeddings":
            self.embedding_requests.labels(*model).inc()
            self.embedding_inputs.labels(*model).inc(record.inputs)
            if record.total_s is not None:
                self.embedding_latency.labels(*model).observe(record.total_s)
            return
        if record.endpoint in SCORING:
            self.rerank_requests.labels(*model).inc()
            self.rerank_pairs.labels(*model).inc(record.inputs)
            if record.total_s is not None:
                self.rerank_latency.labels(*model).observe(record.total_s)
            return
        if record.endpoint not in GENERATING:
            return
        self.success.labels(*model, record.finish_reason or "stop").inc()
        self.prompt_tokens.labels(*model).inc(record.prompt_tokens)
        self.generation_tokens.labels(*model).inc(record.completion_tokens)
        if record.ttft_s is not None:
            self.ttft.labels(*model).observe(record.ttft_s)
        if record.total_s is not None:
            self.e2e.labels(*model).observe(record.total_s)
        if record.queued_s is not None:
            self.queue.labels(*model).observe(record.queued_s)
        itl = self.itl.labels(*model)
        for gap in record.token_gaps:
            itl.observe(gap)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
