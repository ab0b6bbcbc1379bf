"""``recsys models``: registered versions, promotion and rollback from the shell."""

from __future__ import annotations

import click

from recsys import constants as C


@click.group()
def models():
    """List registered versions, promote one, roll back."""


@models.command("list")
@click.option("--name", default=C.MODEL_NAME, show_default=True)
def list_(name):
    """Versions, newest first, with aliases and gate metrics."""
    from registry.store import list_versions

    rows = list_versions(name)
    if not rows:
        click.echo(f"no versions of {name!r}")
        return
    head = f"{'version':>8}  {'aliases':<20} {'horizon':>7} {'as_of':<10} {'data':<12} {'gate':<7}"
    click.echo(head + "".join(f"{m:>32}" for m in C.GATE_METRICS))
    for r in rows:
        vals = "".join(f"{'' if r[m] is None else format(r[m], '.4f'):>32}" for m in C.GATE_METRICS)
        click.echo(
            f"{r['version']:>8}  {','.join(r['aliases']):<20} {r['horizon_days'] or '':>7} {r['as_of'] or '':<10} "
            f"{(r['data_fingerprint'] or '')[:12]:<12} {r['quality_gate'] or '':<7}{vals}"
        )


@models.command()
@click.argument("version")
@click.option("--name", default=C.MODEL_NAME, show_default=True)
def promote(version, name):
    """Make VERSION the champion (the current one can be restored with rollback)."""
    from registry.store import RegistryError
    from registry.store import promote as do_promote

    try:
        do_promote(name, version)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name}: champion is now version {version}")


@models.command()
@click.option("--name", default=C.MODEL_NAME, show_default=True)
def rollback(name):
    """Give the champion alias back to the previous champion."""
    from registry.store import RegistryError
    from registry.store import rollback as do_rollback

    try:
        old, new = do_rollback(name)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name}: champion moved from version {old} back to version {new}")
