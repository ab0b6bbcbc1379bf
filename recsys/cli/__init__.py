"""The ``recsys`` command line: one group per area (data, report, train, models, serve...)."""

from __future__ import annotations

import logging

import click

from recsys.cli.data import data
from recsys.cli.report import report
from serving.cli import keys, serve
from training.cli import export, models, train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="loyalty-offers")
def main(verbose: int) -> None:
    """Personalized offers and churn risk for loyalty and retention marketing."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


main.add_command(data)
main.add_command(report)
main.add_command(train)
main.add_command(models)
main.add_command(serve)
main.add_command(keys)
main.add_command(export)
