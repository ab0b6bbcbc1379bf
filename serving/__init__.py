"""The Flask service that answers marketing tools with offers and churn risk.

``create_app(config=None)`` (serving.app) builds an app from the environment
(serving.config.Settings) with ``config`` overriding any setting; gunicorn starts
``serving:create_app()``. docs/api.md describes the endpoints.

The package imports nothing itself: ``recsys serve`` (serving.cli) starts gunicorn without
importing Flask, pandas or the model's code first, and gunicorn imports the app once.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name == "create_app":
        from serving.app import create_app

        return create_app
    raise AttributeError(f"module 'serving' has no attribute {name!r}")
