"""The README, followed as a newcomer would: `make run` on a fresh data directory and tracking
store, its example request, then every command of the README's shell blocks, in order, in a
workspace beside it (``.venv/bin/`` is this suite's environment; port 8000 becomes a free port).
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from serving.probe import wait_http
from tests.procs import child_env, free_port, stop, stop_group

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
README = ROOT / "README.md"

pytestmark = [pytest.mark.slow, pytest.mark.completejourney]


def readme_commands() -> list[str]:
    """Every command of the README's ```sh blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line:
                commands.append(line)
    return commands


class Output:
    """A process's output, read on a thread so the pipe never fills."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc):
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, prefix: str, proc: subprocess.Popen, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            assert proc.poll() is None, "\n".join(self.lines[-60:])
            assert time.monotonic() < deadline, f"no line {prefix!r} in {timeout} s:\n" + "\n".join(self.lines[-60:])
            time.sleep(0.5)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A newcomer's checkout state after `make run`: data/completejourney, mlflow.db with the
    champion, api_keys.json; returns (folder, the printed key, the printed lines)."""
    if not (BIN.parent / ".installed").exists():
        pytest.skip("needs the .venv that `make test` builds")
    import mlflow

    ws = tmp_path_factory.mktemp("newcomer")
    tracking = f"sqlite:///{ws / 'mlflow.db'}"
    # artifacts beside the store, as they are beside ./mlflow.db in a checkout
    mlflow.MlflowClient(tracking).create_experiment("loyalty-offers", artifact_location=(ws / "mlruns").as_uri())
    port = free_port()
    proc = subprocess.Popen(
        [
            "make",
            "run",
            f"VENV={BIN.parent}",
            f"DATA_DIR={ws / 'data' / 'completejourney'}",
            f"PORT={port}",
            f"KEYS_FILE={ws / 'api_keys.json'}",
        ],
        cwd=ROOT,
        env=child_env(MLFLOW_TRACKING_URI=tracking),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    out = Output(proc)
    try:
        key = out.wait_for("API key:", proc, timeout=900).split()[2]
        ui = out.wait_for("MLflow UI:", proc, timeout=5)
        tried = out.wait_for("try:", proc, timeout=5)
        wait_http(f"http://127.0.0.1:{port}/readyz", proc, timeout=120)
        answer = subprocess.run(
            ["bash", "-c", tried.split(":", 1)[1].strip()], capture_output=True, text=True, timeout=60
        )
    finally:
        stop_group(proc)
    assert ui.split()[2:5] == [str(BIN / "mlflow"), "ui", "--backend-store-uri"] and tracking in ui
    assert answer.returncode == 0, answer.stderr
    body = json.loads(answer.stdout)
    assert body["customer_id"] == 1364 and body["cold_start"] is False and body["model_version"] == "1"
    assert 1 <= len(body["offers"]) <= 5
    assert all(o["start_date"] <= "2018-01-01" <= o["end_date"] for o in body["offers"])
    printed = "\n".join(out.lines)
    assert "quality gate for version 1 (champion: none): PASSED" in printed
    return ws, key, printed


def test_make_run_imports_trains_promotes_and_serves(workspace):
    ws, key, printed = workspace
    assert key.startswith("rk_") and key not in (ws / "api_keys.json").read_text()  # only its hash is stored
    assert (ws / "data" / "completejourney" / "transactions.parquet").exists()
    assert "transactions     1,469,307" in printed  # the validation summary of the real data


def test_every_readme_command_runs(workspace, tmp_path):
    ws, _, _ = workspace
    commands = readme_commands()
    env = child_env()  # no MLFLOW_TRACKING_URI: the default sqlite:///mlflow.db, in the workspace
    port = free_port()
    server = None
    seen = set()
    try:
        for command in commands:
            line = command.replace(".venv/bin/", f"{BIN}/").replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            words = shlex.split(line)
            tool = Path(words[0]).name
            if tool == "make":
                # make run: the fixture; make test: this suite; make benchmark: its scripts must exist
                assert words[1] in ("run", "test", "benchmark"), command
                seen.add(f"make {words[1]}")
                continue
            if tool == "mlflow" and words[1] == "ui":
                ui_port = free_port()
                proc = subprocess.Popen(
                    [*words, "--host", "127.0.0.1", "--port", str(ui_port)],
                    cwd=ws,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                try:
                    wait_http(f"http://127.0.0.1:{ui_port}/health", proc, timeout=120)
                    found = _get_json(f"http://127.0.0.1:{ui_port}/api/2.0/mlflow/experiments/search?max_results=10")
                    assert "loyalty-offers" in {e["name"] for e in found["experiments"]}
                finally:
                    stop(proc)
                seen.add("mlflow ui")
                continue
            if tool == "mlflow" and words[1] == "run":
                # as written, from the checkout, with nothing on PATH but the system's: the data and
                # the tracking store are the workspace's
                words[words.index("data=data/completejourney")] = f"data={ws / 'data' / 'completejourney'}"
                bare = {
                    **env,
                    "PATH": "/usr/local/bin:/usr/bin:/bin",
                    "MLFLOW_TRACKING_URI": f"sqlite:///{ws / 'mlflow.db'}",
                }
                done = subprocess.run(words, cwd=ROOT, env=bare, capture_output=True, text=True, timeout=900)
                assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
                assert "command not found" not in done.stderr
                seen.add("mlflow run")
                continue
            if tool == "recsys" and words[1] == "serve":
                words[words.index("--port") + 1] = str(port)
                server = subprocess.Popen(
                    words, cwd=ws, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
                )
                wait_http(f"http://127.0.0.1:{port}/readyz", server, timeout=120)
                seen.add("recsys serve")
                continue
            done = subprocess.run(["bash", "-c", line], cwd=ws, env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
            if tool == "recsys" and words[1:3] == ["keys", "create"]:
                env["KEY"] = done.stdout.strip()
            seen.add(" ".join(words[:3]) if tool == "recsys" else tool)
    finally:
        if server is not None:
            stop_group(server)

    assert {"make run", "make test", "mlflow ui", "mlflow run", "recsys serve", "curl"} <= seen
    # what the commands left behind is what the README says they make
    assert pd.read_parquet(ws / "data" / "synth" / "transactions.parquet").shape[0] > 0
    assert (ws / "data" / "synth.db").exists()
    assert (ws / "reports" / "segments").is_dir() and (ws / "reports" / "retention").is_dir()
    offers = pd.read_csv(ws / "exports" / "offers.csv")
    assert list(offers.columns[:10]) == [
        "customer_id",
        "rank",
        "offer_id",
        "tier",
        "score",
        "p_redeem",
        "expected_value",
        "reason",
        "reason_code",
        "cold_start",
    ]
    assert offers.groupby("customer_id")["rank"].max().max() <= 5 and offers["customer_id"].nunique() > 2000
    at_risk = pd.read_parquet(ws / "exports" / "at_risk.parquet")
    assert (at_risk["churn_probability"] >= 0.3).all() and len(at_risk) > 50
    with open(ws / "at_risk.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(float(r["churn_probability"]) >= 0.3 for r in rows)
    # train and mlflow run made versions 2 and 3 (champion by the gate on the same data), promote 1
    # then rollback gave the champion back
    listed = subprocess.run(
        [str(BIN / "recsys"), "models", "list"], cwd=ws, env=env, capture_output=True, text=True, timeout=120
    )
    assert re.search(r"^\s+3\s+\S*champion", listed.stdout, re.M), listed.stdout


def test_benchmark_scripts_start():
    """`make benchmark` and the scripts README names exist and parse their arguments."""
    recipe = re.search(r"^benchmark:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    scripts = set(re.findall(r"(benchmarks/\w+\.py)", recipe)) | set(
        re.findall(r"(benchmarks/\w+\.py)", README.read_text())
    )
    assert len(scripts) >= 8
    for script in sorted(scripts):
        helped = subprocess.run(
            [sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT
        )
        assert helped.returncode == 0 and "usage:" in helped.stdout, f"{script}: {helped.stderr[-2000:]}"


def _get_json(url: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())
