"""Offer recommendation and churn-risk library for loyalty and retention marketing.

The library holds the domain logic (data contract, features, models, ranking);
it imports neither Flask nor an MLflow server.
"""

__version__ = "0.1.0"
