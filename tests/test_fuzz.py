"""schemathesis against the running service (gunicorn), every check, bounded: no server error,
no answer outside its documented schema, status or content type, nothing the document says is
invalid accepted (schemathesis.toml says which well-formed requests the service refuses, 422)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from serving.auth import KeyStore
from serving.probe import wait_http
from tests.procs import child_env, free_port, stop

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize("role", ["read", "admin"])
def test_schemathesis_finds_nothing(synth_bundle_dir, tmp_path, role):
    if not (BIN / "schemathesis").exists():
        pytest.skip("schemathesis is not installed (make install-dev)")
    key = KeyStore(tmp_path / "keys.json").create(role, "fuzz")
    port = free_port()
    env = child_env(
        RECSYS_MODEL_URI=str(synth_bundle_dir),
        RECSYS_API_KEYS_FILE=str(tmp_path / "keys.json"),
        RECSYS_EVENTS_URL=f"sqlite:///{tmp_path / 'events.db'}",
        RECSYS_LOCAL_COPY="",
    )
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "recsys"), "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env={**env, "RECSYS_ACCESS_LOG": "-"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", proc)
        done = subprocess.run(
            [
                str(BIN / "schemathesis"),
                "--config-file",
                str(ROOT / "schemathesis.toml"),
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "--checks",
                "all",
                "-H",
                f"X-API-Key: {key}",
                "--max-examples",
                "20",
                "--seed",
                "7",
                "--request-timeout",
                "120",  # a loaded CI machine: a reload or a 10,000-event post can take a while
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
    finally:
        stop(proc)
    log.close()
    out = done.stdout + done.stderr
    served = (tmp_path / "serve.log").read_text()
    assert done.returncode == 0, out[-5000:] + "\n--- service log ---\n" + served[-5000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", out)
    assert generated and int(generated.group(1)) == int(generated.group(2)) > 200, out[-2000:]
