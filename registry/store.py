"""The model registry: the tracking URI, candidates, champions, promotion and rollback.

Every trained model becomes a new version of ``loyalty-offers`` with the alias ``candidate``;
the training job's quality gate (training.gate) moves ``champion`` when it passes. Promotions
are recorded on the registered model (tag ``champion_history``) so that ``rollback`` can return
to the previous champion.
"""

from __future__ import annotations

import os

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from recsys import constants as C
from recsys.errors import RecsysError

HISTORY_TAG = "champion_history"


class RegistryError(RecsysError):
    """A registry operation cannot be done (unknown version, nothing to roll back to...)."""


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, or the SQLite file in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or C.DEFAULT_TRACKING_URI


def client(tracking: str | None = None) -> MlflowClient:
    """A client of the tracking server and registry (``tracking`` or :func:`tracking_uri`)."""
    mlflow.set_tracking_uri(tracking or tracking_uri())
    return MlflowClient()


def register_candidate(model_uri: str, name: str, run_id: str | None = None) -> str:
    """A new version of ``name`` from ``model_uri``, with the alias ``candidate``."""
    c = client()
    try:
        c.get_registered_model(name)
    except MlflowException:
        c.create_registered_model(name, description="Personalized offers and churn risk (recsys bundle)")
    mv = mlflow.register_model(model_uri, name)  # ties the version to the logged model and its run
    c.set_registered_model_alias(name, C.CANDIDATE, mv.version)
    return str(mv.version)


def version_metrics(c: MlflowClient, name: str, version: str) -> tuple[dict, dict]:
    """The metrics and parameters of the training run that logged ``version``."""
    mv = c.get_model_version(name, version)
    run = c.get_run(mv.run_id)
    parent = run.data.tags.get("mlflow.parentRunId")  # the model is logged by the package stage
    if parent:
        run = c.get_run(parent)
    return run.data.metrics, run.data.params


def alias_version(name: str, alias: str) -> str | None:
    """The version ``alias`` points to, or None."""
    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _history(c: MlflowClient, name: str) -> list[str]:
    tag = c.get_registered_model(name).tags.get(HISTORY_TAG, "")
    return [v for v in tag.split(",") if v]


def set_champion(c: MlflowClient, name: str, version: str) -> None:
    """Point ``champion`` at ``version``, remembering the previous one for rollback."""
    current = alias_version(name, C.CHAMPION)
    if current == version:
        return
    history = _history(c, name)
    if current is not None:
        history.append(current)
    c.set_registered_model_tag(name, HISTORY_TAG, ",".join(history[-50:]))
    c.set_registered_model_alias(name, C.CHAMPION, version)


def promote(name: str, version: str) -> None:
    """Make ``version`` the champion by hand (the previous one is remembered for rollback)."""
    c = client()
    try:
        c.get_model_version(name, str(version))
    except MlflowException:
        raise RegistryError(f"model {name!r} has no version {version}") from None
    set_champion(c, name, str(version))


def rollback(name: str) -> tuple[str | None, str]:
    """Return ``champion`` to the version it had before the last promotion: (old, new)."""
    c = client()
    history = _history(c, name)
    current = alias_version(name, C.CHAMPION)
    while history and history[-1] == current:
        history.pop()
    if not history:
        raise RegistryError(f"model {name!r}: no earlier champion to roll back to")
    previous = history.pop()
    c.set_registered_model_tag(name, HISTORY_TAG, ",".join(history))
    c.set_registered_model_alias(name, C.CHAMPION, previous)
    return current, previous


def list_versions(name: str) -> list[dict]:
    """Versions newest first, with aliases and gate metrics."""
    c = client()
    try:
        versions = c.search_model_versions(f"name='{name}'")
    except MlflowException:
        return []
    rows = []
    for mv in sorted(versions, key=lambda v: int(v.version), reverse=True):
        mv = c.get_model_version(name, mv.version)  # search results leave the aliases out
        metrics, params = version_metrics(c, name, mv.version) if mv.run_id else ({}, {})
        rows.append(
            {
                "version": str(mv.version),
                "aliases": sorted(mv.aliases),
                "created": mv.creation_timestamp,
                "run_id": mv.run_id,
                "horizon_days": params.get("horizon_days"),
                "as_of": params.get("as_of"),
                "data_fingerprint": params.get("data_fingerprint"),
                "quality_gate": mv.tags.get("quality_gate"),
                **{m: metrics.get(m) for m in C.GATE_METRICS},
            }
        )
    return rows
