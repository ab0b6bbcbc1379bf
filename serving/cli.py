"""``recsys serve`` and ``recsys keys``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

CONFIG = Path(__file__).with_name("gunicorn.conf.py")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--app", "app_spec", default="serving:create_app()", show_default=True, hidden=True)
def serve(host, port, workers, app_spec):
    """Run the API under gunicorn (settings: serving/gunicorn.conf.py, environment: docs/api.md)."""
    os.environ["RECSYS_BIND"] = f"{host}:{port}"
    os.environ["RECSYS_WORKERS"] = str(workers)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    args = [str(gunicorn), "-c", str(CONFIG), app_spec]
    os.execv(args[0], args)


@click.group()
def keys():
    """API keys for the service (stored as hashes in RECSYS_API_KEYS_FILE)."""


@keys.command()
@click.option("--role", type=click.Choice(["read", "events", "admin"]), required=True)
@click.option("--name", default="", help="Who or what the key is for.")
@click.option("--file", "path", default=None, help="Keys file (default: RECSYS_API_KEYS_FILE or api_keys.json).")
def create(role, name, path):
    """Create a key and print it once; only its hash is stored."""
    from serving.auth import KeyStore

    path = path or os.environ.get("RECSYS_API_KEYS_FILE") or "api_keys.json"
    key = KeyStore(path).create(role, name)
    click.echo(key)
    click.echo(f"stored the hash of a new '{role}' key in {path}; the key is not shown again", err=True)


@keys.command("list")
@click.option("--file", "path", default=None, help="Keys file (default: RECSYS_API_KEYS_FILE or api_keys.json).")
def list_keys(path):
    """Every key's id, role and name (the keys themselves are never stored)."""
    from serving.auth import KeyStore

    path = path or os.environ.get("RECSYS_API_KEYS_FILE") or "api_keys.json"
    for k in KeyStore(path).entries():
        click.echo(f"{k.key_id}  {k.role:<7} {k.name}")


@keys.command()
@click.option("--name", default=None, help="Revoke every key of this name.")
@click.option("--id", "key_id", default=None, help="Revoke the key of this id (recsys keys list).")
@click.option("--file", "path", default=None, help="Keys file (default: RECSYS_API_KEYS_FILE or api_keys.json).")
def revoke(name, key_id, path):
    """Revoke keys by name or id: the running service refuses them from its next request on."""
    from serving.auth import KeyStore

    path = path or os.environ.get("RECSYS_API_KEYS_FILE") or "api_keys.json"
    try:
        gone = KeyStore(path).revoke(name=name, key_id=key_id)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not gone:
        raise click.ClickException(f"no key {'named ' + repr(name) if name is not None else key_id} in {path}")
    for k in gone:
        click.echo(f"revoked {k.key_id} ({k.role}, {k.name!r})")
