"""The server's Prometheus metrics, on a registry of its own so two servers in one process never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Latency buckets from 0.5 ms: single-row requests take about a millisecond, batches tens of them.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SCORE_BUCKETS = tuple(i / 20 for i in range(1, 21))


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("model_version", "variant", "status")
        self.requests = Counter(
            "clinops_requests", "Prediction requests answered.", [*labels, "endpoint"], registry=self.registry
        )
        self.latency = Histogram(
            "clinops_request_latency_seconds",
            "Time from request to response, in the server.",
            [*labels, "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter("clinops_predictions", "Rows scored.", ["model_version", "variant"], registry=self.registry)
        self.scores = Histogram(
            "clinops_prediction_score",
            "Scores returned.",
            ["model_version", "variant"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "clinops_requests_in_flight", "Prediction requests being answered.", registry=self.registry
        )
        self.load_seconds = Gauge(
            "clinops_model_load_seconds", "Time to load a model version.", ["model_version"], registry=self.registry
        )
        self.loaded = Gauge(
            "clinops_model_loaded",
            "1 for each version currently served, by variant.",
            ["model_version", "variant"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "clinops_model_reloads", "Version swaps, by outcome.", ["outcome"], registry=self.registry
        )
        self.log_written = Counter(
            "clinops_prediction_log_written", "Prediction records written.", registry=self.registry
        )
        self.log_dropped = Counter(
            "clinops_prediction_log_dropped",
            "Prediction records dropped, by reason (buffer_full when the sink falls behind).",
            ["reason"],
            registry=self.registry,
        )
        self.log_buffered = Gauge(
            "clinops_prediction_log_buffered", "Prediction records waiting for the sink.", registry=self.registry
        )
