"""Waiting for a server process to answer (used by the tests and the benchmarks)."""

from __future__ import annotations

import subprocess
import time
import urllib.request


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Return once ``url`` answers 200; raise if ``proc`` exits or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stderr or proc.stdout
            data = out.read() if out is not None else b""
            tail = (data.decode(errors="replace") if isinstance(data, bytes) else data)[-2000:]
            raise RuntimeError(f"server exited with {proc.returncode}: {tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")
