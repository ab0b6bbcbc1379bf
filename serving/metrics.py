"""Prometheus metrics of one app (its own registry: no global state between apps).

Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set (serving/gunicorn.conf.py): every worker
writes its values there and ``/metrics`` reports the sum over the workers, whichever worker
answers the scrape; the model gauges keep one series per worker (``pid`` label).
"""

from __future__ import annotations

import os
import time

import pandas as pd
from flask import Flask, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recsys_requests_total",
            "Requests by endpoint and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "recsys_request_seconds",
            "Request latency by endpoint",
            ["endpoint", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.errors = Counter(
            "recsys_errors_total", "Responses with status >= 500 by endpoint", ["endpoint"], registry=self.registry
        )
        self.answers = Counter(
            "recsys_offer_answers_total",
            "Customers answered with offers, from the answer cache or ranked",
            ["source"],
            registry=self.registry,
        )
        self.answers_cached = self.answers.labels("cache")
        self.answers_ranked = self.answers.labels("ranked")
        self.model_version = Gauge(
            "recsys_model_version",
            "Version of the loaded model (0 when unversioned)",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.model_loaded_at = Gauge(
            "recsys_model_loaded_at_seconds",
            "When the loaded model was loaded (Unix time)",
            registry=self.registry,
            multiprocess_mode="liveall",
        )

        # staleness: alert on time() - these (the model's age, and how old its newest data is)
        self.model_trained_at = Gauge(
            "recsys_model_trained_at_seconds",
            "When the loaded model was trained (Unix time)",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.model_data_last = Gauge(
            "recsys_model_data_last_date_seconds",
            "The last transaction date of the loaded model's training data (Unix time)",
            registry=self.registry,
            multiprocess_mode="liveall",
        )

    def init_app(self, app: Flask) -> None:
        wsgi_app = app.wsgi_app

        def timed(environ, start_response):  # the clock starts before Flask sees the request
            environ["recsys.t0"] = time.perf_counter()
            return wsgi_app(environ, start_response)

        app.wsgi_app = timed

        children: dict = {}  # (endpoint, method, status) -> its series: looked up once, not per request

        @app.after_request
        def _record(response):
            endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
            key = (endpoint, request.method, response.status_code)
            series = children.get(key)
            if series is None:
                series = children[key] = (
                    self.latency.labels(endpoint, request.method),
                    self.requests.labels(endpoint, request.method, str(response.status_code)),
                )
            t0 = request.environ.get("recsys.t0")
            if t0 is not None:
                series[0].observe(time.perf_counter() - t0)
            series[1].inc()
            if response.status_code >= 500:
                self.errors.labels(endpoint).inc()
            return response

    def model_loaded(self, version: str | None, loaded_at: float, config: dict | None = None) -> None:
        self.model_version.set(int(version) if version and version.isdigit() else 0)
        self.model_loaded_at.set(loaded_at)
        config = config or {}
        for gauge, key in ((self.model_trained_at, "trained_at"), (self.model_data_last, "data_last_date")):
            try:
                gauge.set(pd.Timestamp(config[key]).timestamp())
            except (KeyError, TypeError, ValueError):
                gauge.set(0)

    def exposition(self) -> tuple[bytes, str]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
