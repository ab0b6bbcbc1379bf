"""The one way the service and the batch jobs get a model: a registry URI or a bundle
directory to a loaded :class:`recsys.bundle.ModelBundle`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from recsys.bundle import ModelBundle
from registry.store import RegistryError, client


@dataclass
class ResolvedModel:
    bundle: object  # recsys.bundle.ModelBundle
    name: str
    version: str | None
    alias: str | None
    quality_gate: str | None = None  # the version's gate result: passed, failed or forced
    path: Path | None = None  # the bundle directory it was read from

    @property
    def pinned_uri(self) -> str | None:
        """``models:/NAME/VERSION``: this very version, whatever the aliases do next."""
        return f"models:/{self.name}/{self.version}" if self.version else None


def load_bundle(model_uri: str, tracking: str | None = None) -> ResolvedModel:
    """The model bundle behind a registry URI (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``),
    any other MLflow model URI, or a bundle directory.

    The bundle is read straight from the model's artifacts: the service and the exports need
    the bundle, not the pyfunc wrapper around it.
    """
    path = Path(model_uri)
    if path.is_dir():
        return ResolvedModel(ModelBundle.load(path), path.name, None, None, path=path)
    _check_tracking_store(tracking)
    c = client(tracking)
    name = version = alias = None
    if model_uri.startswith("models:/"):
        ref = model_uri[len("models:/") :]
        try:
            if "@" in ref:
                name, alias = ref.split("@", 1)
                version = str(c.get_model_version_by_alias(name, alias).version)
            elif "/" in ref:
                name, version = ref.split("/", 1)
        except MlflowException as exc:
            raise RegistryError(f"{model_uri}: {exc.message}") from None
    # the version resolved above, not the alias again: it may have moved in between
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}" if name and version else model_uri))
    gate = None
    if name and version:
        try:
            gate = c.get_model_version(name, version).tags.get("quality_gate")
        except MlflowException:
            gate = None
    bundle_dir = local / "artifacts" / "bundle"
    return ResolvedModel(ModelBundle.load(bundle_dir), name or model_uri, version, alias, gate, bundle_dir)


def _check_tracking_store(tracking: str | None) -> None:
    """Reading a model never creates a registry: a SQLite tracking store must exist."""
    from registry.store import tracking_uri

    uri = tracking or tracking_uri()
    if uri.startswith("sqlite:///"):
        file = Path(uri[len("sqlite:///") :])
        if not file.is_file():
            raise RegistryError(f"the tracking database {file} does not exist (MLFLOW_TRACKING_URI={uri})")


def check_registry(tracking: str | None = None) -> None:
    """Raise unless the registry at ``tracking`` answers (a cheap query)."""
    _check_tracking_store(tracking)
    client(tracking).search_registered_models(max_results=1)
