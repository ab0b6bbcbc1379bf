"""The analyst page: at-risk customers, one customer, segments, lift and the model, served by the
app under /app/ from the same library functions as the JSON API (docs/pages.md).

Server-rendered templates (Jinja, Flask's own) and figures from recsys.reporting.plots drawn as
SVG by the server: no JavaScript framework, nothing from a CDN, so the page works offline and
every figure is the one the reports and MLflow show.
"""

from serving.pages.views import blp

__all__ = ["blp"]
