"""The MLflow pyfunc face of a model bundle, so MLflow's own tools can serve and apply it.

``mlflow.pyfunc.load_model(uri).predict(frame)`` takes a frame with a ``customer_id`` column
and returns one row per (customer, rank): the ranked offers with the customer's churn
probability and risk band. Params: ``k`` (offers per customer, default 10), ``channel`` and
``as_of`` (the date offers must be valid on; default the training date). The Flask service and
the exports read the bundle itself, through registry.loader.
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd

from recsys import constants as C
from recsys.bundle import ModelBundle

OUTPUT_COLUMNS = [*C.RANKED_OFFER_COLUMNS, "churn_probability", "risk_band"]


class LoyaltyOffersModel(mlflow.pyfunc.PythonModel):
    def __init__(self, bundle: ModelBundle | None = None):
        self.bundle = bundle  # set here, or by load_context from the model's artifacts

    def load_context(self, context) -> None:
        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        if C.CUSTOMER_ID not in model_input:
            raise ValueError(f"input needs a {C.CUSTOMER_ID!r} column; got {', '.join(map(str, model_input.columns))}")
        params = params or {}
        ids = model_input[C.CUSTOMER_ID].tolist()
        offers = self.bundle.offers(
            ids,
            k=int(params.get("k", C.DEFAULT_K)),
            channel=params.get("channel") or None,
            as_of=params.get("as_of") or None,
        )
        churn = self.bundle.customers[["churn_probability", "risk_band"]]
        out = offers.join(churn, on=C.CUSTOMER_ID)
        return out[OUTPUT_COLUMNS]
