"""What every `recsys` command shares: exit codes, and how failures and progress are shown."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import click

from recsys.errors import DataSourceError, DataValidationError

EXIT_INVALID_DATA = 2


def fail_on_bad_data(func: Callable) -> Callable:
    """Show data problems as a clear message and exit with status 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DataValidationError as exc:
            click.secho(str(exc), fg="red", err=True)
            click.echo("nothing was written", err=True)
            raise SystemExit(EXIT_INVALID_DATA) from None
        except DataSourceError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            raise SystemExit(EXIT_INVALID_DATA) from None

    return wrapper


def steps(labels: list[str], label: str = "working"):
    """A progress bar over named steps, shown on stderr."""
    return click.progressbar(labels, label=label, file=sys.stderr, item_show_func=lambda s: s or "", show_eta=False)


def events_option(what: str):
    """The ``--events`` option every command that reads or records offer events shares: the
    service's events store (RECSYS_EVENTS_URL, default ./events.db; a SQLite file that does not
    exist is read as empty and not created)."""
    from recsys import constants as C

    return click.option(
        "--events",
        "events_url",
        envvar="RECSYS_EVENTS_URL",
        default=C.DEFAULT_EVENTS_URL,
        show_default=True,
        help=f"The service's events store: {what}; '' for none.",
    )
