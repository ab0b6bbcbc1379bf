"""The ``recsys`` command line, composed here from each part's commands: data and reports
(the library), ``train`` (training), ``models`` (the registry), ``export`` (batch inference),
``serve`` and ``keys`` (the service)."""

from __future__ import annotations

import logging

import click

from commands.data import data
from commands.report import report
from inference.cli import export
from registry.cli import models
from serving.cli import keys, serve
from training.cli import train


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
