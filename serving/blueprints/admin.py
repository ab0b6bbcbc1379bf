"""The loaded model, and reloading it."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.views import MethodView

from serving.schemas import ModelInfo
from serving.web import ApiError, Blueprint, require, state

blp = Blueprint("model", __name__, url_prefix="/v1", description="Model information and reload")


def model_age_days(trained_at: str | None) -> float | None:
    if not trained_at:
        return None
    return round((datetime.now(UTC) - datetime.fromisoformat(trained_at)).total_seconds() / 86400, 3)


def model_info() -> dict:
    loaded = state().model.current
    b = loaded.bundle
    return {
        "name": loaded.name,
        "version": loaded.version,
        "alias": loaded.alias,
        "model_uri": loaded.model_uri,
        "trained_at": b.config.get("trained_at"),
        "as_of": b.config.get("as_of"),
        "horizon_days": b.config.get("horizon_days"),
        "data_fingerprint": b.config.get("data_fingerprint"),
        "data_last_date": b.config.get("data_last_date"),
        "age_days": model_age_days(b.config.get("trained_at")),
        "quality_gate": loaded.quality_gate,
        "source": loaded.source,
        "loaded_at": datetime.fromtimestamp(loaded.loaded_at, UTC).isoformat(),
        "metrics": {k: float(v) for k, v in b.metrics.items()},
        "catalog_offers": len(loaded.catalog),
        "customers": len(b.customers),
    }


@blp.route("/model")
class ModelView(MethodView):
    @require("read")
    @blp.response(200, ModelInfo)
    def get(self):
        """Name, version, alias, training date and key metrics of the loaded model."""
        return model_info()


@blp.route("/admin/reload")
class ReloadView(MethodView):
    @require("admin")
    @blp.response(200, ModelInfo)
    def post(self):
        """Load the current champion and catalog, warm up, then swap; requests in flight finish
        on the old model. The other workers follow within seconds."""
        try:
            state().model.reload(announce=True)
        except Exception as exc:  # the old model keeps serving
            raise ApiError(503, "reload_failed", f"{exc}; still serving the previous model") from None
        return model_info()
