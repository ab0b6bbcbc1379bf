"""The reload token: which model every worker of a service serves, and from when.

One file in the service's run folder, replaced atomically. ``POST /v1/admin/reload`` loads
the champion, pins it to its version and writes a token naming that version and a moment a
few seconds ahead; every worker loads the pinned version beside the one it serves and swaps at
that moment, so answers switch once across workers instead of flipping between versions. A
worker forked later (a killed worker replaced, a HUP) reads the token before it serves: it
serves the version the service was last told to serve, never the master's start-up model
after a reload, and never a champion promoted since without a reload.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ReloadToken:
    serial: str  # new for every reload
    model_uri: str  # the pinned version to serve (models:/NAME/VERSION) or a bundle directory
    previous_uri: str | None  # what was served before activate_at
    activate_at: float  # Unix time from which model_uri is served

    @classmethod
    def new(cls, model_uri: str, previous_uri: str | None, delay: float) -> ReloadToken:
        return cls(f"{time.time_ns()}-{os.getpid()}", model_uri, previous_uri, time.time() + delay)

    @classmethod
    def read(cls, path: Path | None) -> ReloadToken | None:
        if path is None:
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None  # none yet (or a half-written file of another version: ignored)

    def write(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)  # the others read the whole token or the old one
