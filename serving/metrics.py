"""Prometheus metrics of one app (its own registry: no global state between apps)."""

from __future__ import annotations

import time

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("recsys_requests_total", "Requests by endpoint and status",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("recsys_request_seconds", "Request latency by endpoint", ["endpoint", "method"],
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                                 registry=self.registry)
        self.errors = Counter("recsys_errors_total", "Responses with status >= 500 by endpoint", ["endpoint"],
                              registry=self.registry)
        self.answers = Counter("recsys_offer_answers_total", "Customers answered with offers, from the answer "
                               "cache or ranked", ["source"], registry=self.registry)
        self.answers_cached = self.answers.labels("cache")
        self.answers_ranked = self.answers.labels("ranked")
        self.model_version = Gauge("recsys_model_version", "Version of the loaded model (0 when unversioned)",
                                   registry=self.registry)

    def init_app(self, app: Flask) -> None:
        @app.before_request
        def _start():
            g._t0 = time.perf_counter()

        children: dict = {}  # (endpoint, method, status) -> its series: looked up once, not per request

        @app.after_request
        def _record(response):
            endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
            key = (endpoint, request.method, response.status_code)
            series = children.get(key)
            if series is None:
                series = children[key] = (self.latency.labels(endpoint, request.method),
                                          self.requests.labels(endpoint, request.method, str(response.status_code)))
            t0 = g.pop("_t0", None)
            if t0 is not None:
                series[0].observe(time.perf_counter() - t0)
            series[1].inc()
            if response.status_code >= 500:
                self.errors.labels(endpoint).inc()
            return response

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
