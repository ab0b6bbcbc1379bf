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


def load_bundle(model_uri: str, tracking: str | None = None) -> ResolvedModel:
    """The model bundle behind a registry URI (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``),
    any other MLflow model URI, or a bundle directory.

    The bundle is read straight from the model's artifacts: the service and the exports need
    the bundle, not the pyfunc wrapper around it.
    """
    path = Path(model_uri)
    if path.is_dir():
        return ResolvedModel(ModelBundle.load(path), path.name, None, None)
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
    local = Path(mlflow.artifacts.download_artifacts(model_uri))
    gate = None
    if name and version:
        try:
            gate = c.get_model_version(name, version).tags.get("quality_gate")
        except MlflowException:
            gate = None
    return ResolvedModel(ModelBundle.load(local / "artifacts" / "bundle"), name or model_uri, version, alias, gate)
