"""The MLflow model registry as the project uses it: versions, aliases (``candidate``,
``champion``), promotion and rollback (registry.store), and the one loader through which the
service and the batch jobs get a model (registry.loader)."""
