"""A verified local copy of the last model a service loaded, to start from when the registry
cannot be reached.

The copy is a bundle directory (whose bundle.json lists a SHA-256 per file, checked on every
load) with ``served.json`` beside it: the registered name, version and alias it came from.
It is replaced atomically after each load from the registry.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from recsys.bundle import ModelBundle
from recsys.io import atomic_directory
from registry.loader import ResolvedModel
from registry.store import RegistryError


def save_copy(resolved: ResolvedModel, bundle_dir: Path, dest: str | Path, *, source: str = "") -> None:
    """Keep ``bundle_dir`` (the bundle ``resolved`` was loaded from) as the local copy of the
    model asked for as ``source`` (its registry and URI): only a service asking for the same
    one falls back to it."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(dest) as stage:
        shutil.copytree(bundle_dir, stage / "bundle")
        (stage / "served.json").write_text(
            json.dumps(
                {
                    "name": resolved.name,
                    "version": resolved.version,
                    "alias": resolved.alias,
                    "quality_gate": resolved.quality_gate,
                    "source": source,
                    "saved_at": time.time(),
                }
            )
        )


def load_copy(path: str | Path, *, source: str = "") -> tuple[ResolvedModel, float]:
    """The local copy of the model asked for as ``source``, verified file by file: (the model,
    when it was saved)."""
    path = Path(path)
    if not (path / "served.json").is_file():
        raise RegistryError(f"no local copy of a served model at {path}")
    meta = json.loads((path / "served.json").read_text())
    if meta.get("source", "") != source:
        raise RegistryError(f"the local copy at {path} is of {meta.get('source') or 'another model'}, not {source}")
    bundle = ModelBundle.load(path / "bundle")  # checks every file's checksum
    return (
        ResolvedModel(bundle, meta["name"], meta.get("version"), meta.get("alias"), meta.get("quality_gate")),
        float(meta.get("saved_at", 0)),
    )
