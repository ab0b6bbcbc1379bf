"""The steps of `make run` that need more than a shell line: the port checked before any work,
training only when the champion was not trained on this data, and one development key kept
across runs.

    python tools/make_run.py check-port 8000
    python tools/make_run.py train data/completejourney [--retrain]
    python tools/make_run.py dev-key api_keys.json
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import click

DEV_KEY_NAME = "make run development key"


@click.group()
def main():
    """Steps of `make run`."""


@main.command("check-port")
@click.argument("port", type=int)
@click.option("--host", default="127.0.0.1")
def check_port(port: int, host: str):
    """Fail at once, before any training, when the port is taken."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"port {port} on {host} is in use ({exc.strerror}): stop what listens there, "
                "or run make run PORT=<another>"
            ) from None


@main.command()
@click.argument("data")
@click.option("--retrain", is_flag=True, help="Train even when the champion was trained on this data.")
def train(data: str, retrain: bool):
    """Train and register, unless the champion was trained on this very data (same fingerprint)."""
    if not retrain:
        same = _champion_on(data)
        if same is not None:
            click.echo(
                f"champion version {same} was trained on this data; not retraining (make run RETRAIN=1 retrains)"
            )
            return
    done = subprocess.run([str(Path(sys.executable).with_name("recsys")), "train", "--data", data])
    sys.exit(done.returncode)


def _champion_on(data: str) -> str | None:
    from recsys import constants as C
    from registry.store import alias_version, client, version_metrics
    from training.config import TrainConfig
    from training.stages.customers import training_data

    version = alias_version(C.MODEL_NAME, C.CHAMPION)
    if version is None:
        return None
    _, params = version_metrics(client(), C.MODEL_NAME, version)
    events = os.environ.get("RECSYS_EVENTS_URL") or C.DEFAULT_EVENTS_URL
    ds = training_data(TrainConfig(data=data, events_url=events))[0]
    return version if params.get("data_fingerprint") == ds.fingerprint() else None


@main.command("dev-key")
@click.argument("keys_file")
def dev_key(keys_file: str):
    """Print the development admin key: the one made by an earlier run if the keys file still
    holds it, else a new one (kept beside the keys file, readable by its owner only, for the next
    run)."""
    from recsys.io import write_text_atomic
    from serving.auth import KeyStore

    store = KeyStore(keys_file)
    kept = Path(keys_file).with_name(".dev_key")
    if kept.is_file():
        key = kept.read_text().strip()
        found = store.lookup(key)
        if found is not None and found.role == "admin":
            click.echo(key)
            return
    if any(k.name == DEV_KEY_NAME for k in store.entries()):
        store.revoke(name=DEV_KEY_NAME)  # an earlier development key whose secret is lost
    key = store.create("admin", DEV_KEY_NAME)
    write_text_atomic(kept, key + "\n", mode=0o600)
    click.echo(key)


if __name__ == "__main__":
    main()
