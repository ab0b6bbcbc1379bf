"""The model registry: candidates, the quality gate, promotion and rollback.

Every trained model becomes a new version of ``loyalty-offers`` with the alias ``candidate``.
The quality gate (docs/training.md) compares it with the ``champion`` and moves ``champion``
only when it passes. Promotions are recorded on the registered model (tag
``champion_history``) so that ``rollback`` can return to the previous champion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from recsys.errors import RecsysError

CANDIDATE = "candidate"
CHAMPION = "champion"
HISTORY_TAG = "champion_history"

# Metric, and the baselines the model must beat on it (same run, same evaluation).
GATE = {
    "churn_model_roc_auc": ("churn_recency_rule_roc_auc", "churn_bgnbd_roc_auc"),
    "churn_model_average_precision": ("churn_bgnbd_average_precision",),
    "offers_engine_recall_at_10": ("offers_popularity_recall_at_10", "offers_random_recall_at_10"),
    "cf_als_all_ndcg_at_10": ("cf_popularity_all_ndcg_at_10",),
}


class RegistryError(RecsysError):
    """A registry operation cannot be done (unknown version, nothing to roll back to...)."""


@dataclass
class GateResult:
    version: str
    champion: str | None
    passed: bool
    promoted: bool
    checks: list[dict] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict:
        return {"version": self.version, "champion": self.champion, "passed": self.passed,
                "promoted": self.promoted, "checks": self.checks, "note": self.note}

    def report(self) -> str:
        lines = [f"quality gate for version {self.version} "
                 f"(champion: {self.champion or 'none'}): {'PASSED' if self.passed else 'FAILED'}"]
        for c in self.checks:
            mark = "ok  " if c["ok"] else "FAIL"
            lines.append(f"  {mark} {c['metric']} = {_fmt(c['value'])} {c['rule']} {_fmt(c['against'])} ({c['what']})")
        if self.note:
            lines.append(f"  note: {self.note}")
        lines.append(f"  champion is now version {self.version}" if self.promoted else
                     f"  champion unchanged ({self.champion or 'none'})")
        return "\n".join(lines)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def client() -> MlflowClient:
    from training.pipeline import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    return MlflowClient()


def register_candidate(model_uri: str, name: str, run_id: str | None = None) -> str:
    c = client()
    try:
        c.get_registered_model(name)
    except MlflowException:
        c.create_registered_model(name, description="Personalized offers and churn risk (recsys bundle)")
    mv = mlflow.register_model(model_uri, name)  # ties the version to the logged model and its run
    c.set_registered_model_alias(name, CANDIDATE, mv.version)
    return str(mv.version)


def _version_metrics(c: MlflowClient, name: str, version: str) -> tuple[dict, dict]:
    mv = c.get_model_version(name, version)
    run = c.get_run(mv.run_id)
    parent = run.data.tags.get("mlflow.parentRunId")  # the model is logged by the package stage
    if parent:
        run = c.get_run(parent)
    return run.data.metrics, run.data.params


def alias_version(name: str, alias: str) -> str | None:
    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def quality_gate(name: str, version: str, *, tolerance: float = 0.01, promote: bool = True) -> GateResult:
    """Check ``version`` against its baselines and the champion; promote it when it passes."""
    c = client()
    metrics, params = _version_metrics(c, name, version)
    champion = alias_version(name, CHAMPION)
    checks = []
    for metric, baselines in GATE.items():
        value = metrics.get(metric)
        if value is None:
            continue  # that part was not evaluated (e.g. a dataset without campaigns)
        for b in baselines:
            if b in metrics:
                checks.append({"metric": metric, "value": value, "rule": ">", "against": metrics[b],
                               "what": f"baseline {b}", "ok": value > metrics[b]})
    note = ""
    if champion is not None and champion != version:
        old, old_params = _version_metrics(c, name, champion)
        same = old_params.get("data_fingerprint") == params.get("data_fingerprint") and \
            old_params.get("as_of") == params.get("as_of")
        if same:
            for metric in GATE:
                if metric in metrics and metric in old:
                    checks.append({"metric": metric, "value": metrics[metric], "rule": ">=",
                                   "against": old[metric] - tolerance,
                                   "what": f"champion v{champion} {old[metric]:.4f} - tolerance {tolerance}",
                                   "ok": metrics[metric] >= old[metric] - tolerance})
        else:
            note = (f"champion v{champion} was evaluated on other data or another date "
                    f"({old_params.get('data_fingerprint')} as of {old_params.get('as_of')}); "
                    "only the baselines are compared")
    if not checks:
        note = (note + "; " if note else "") + "no gate metric was evaluated"
    passed = bool(checks) and all(ch["ok"] for ch in checks)
    promoted = False
    if passed and promote:
        _set_champion(c, name, version)
        promoted = True
    return GateResult(version, champion, passed, promoted, checks, note)


def _history(c: MlflowClient, name: str) -> list[str]:
    tag = c.get_registered_model(name).tags.get(HISTORY_TAG, "")
    return [v for v in tag.split(",") if v]


def _set_champion(c: MlflowClient, name: str, version: str) -> None:
    current = alias_version(name, CHAMPION)
    if current == version:
        return
    history = _history(c, name)
    if current is not None:
        history.append(current)
    c.set_registered_model_tag(name, HISTORY_TAG, ",".join(history[-50:]))
    c.set_registered_model_alias(name, CHAMPION, version)


def promote(name: str, version: str) -> None:
    """Make ``version`` the champion by hand (the previous one is remembered for rollback)."""
    c = client()
    try:
        c.get_model_version(name, str(version))
    except MlflowException:
        raise RegistryError(f"model {name!r} has no version {version}") from None
    _set_champion(c, name, str(version))


def rollback(name: str) -> tuple[str | None, str]:
    """Return ``champion`` to the version it had before the last promotion: (old, new)."""
    c = client()
    history = _history(c, name)
    current = alias_version(name, CHAMPION)
    while history and history[-1] == current:
        history.pop()
    if not history:
        raise RegistryError(f"model {name!r}: no earlier champion to roll back to")
    previous = history.pop()
    c.set_registered_model_tag(name, HISTORY_TAG, ",".join(history))
    c.set_registered_model_alias(name, CHAMPION, previous)
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
        metrics = _version_metrics(c, name, mv.version)[0] if mv.run_id else {}
        rows.append({"version": str(mv.version), "aliases": sorted(mv.aliases),
                     "created": mv.creation_timestamp, "run_id": mv.run_id,
                     **{m: metrics.get(m) for m in GATE}})
    return rows


@dataclass
class ResolvedModel:
    bundle: object  # recsys.bundle.ModelBundle
    name: str
    version: str | None
    alias: str | None


def load_bundle(model_uri: str, tracking: str | None = None) -> ResolvedModel:
    """The model bundle behind a registry URI (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``),
    any other MLflow model URI, or a bundle directory.

    The bundle is read straight from the model's artifacts: the service and the exports need
    the bundle, not the pyfunc wrapper around it.
    """
    from pathlib import Path

    from recsys.bundle import ModelBundle

    path = Path(model_uri)
    if path.is_dir():
        return ResolvedModel(ModelBundle.load(path), path.name, None, None)
    if tracking is not None:
        mlflow.set_tracking_uri(tracking)
        c = MlflowClient()
    else:
        c = client()
    name = version = alias = None
    if model_uri.startswith("models:/"):
        ref = model_uri[len("models:/"):]
        try:
            if "@" in ref:
                name, alias = ref.split("@", 1)
                version = str(c.get_model_version_by_alias(name, alias).version)
            elif "/" in ref:
                name, version = ref.split("/", 1)
        except MlflowException as exc:
            raise RegistryError(f"{model_uri}: {exc.message}") from None
    local = Path(mlflow.artifacts.download_artifacts(model_uri))
    return ResolvedModel(ModelBundle.load(local / "artifacts" / "bundle"), name or model_uri, version, alias)
