"""The Flask service that answers marketing tools with offers and churn risk."""
