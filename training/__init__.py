"""Training jobs: read a dataset, fit and evaluate the models, track them in MLflow."""
