"""The ``recsys`` command line, composed here from each part's commands: data and reports
(the library), ``train`` (training), ``models`` (the registry), ``export`` (batch inference),
``serve`` and ``keys`` (the service).

Each command's module is imported when that command runs, not before: ``recsys serve`` hands
over to gunicorn without importing pandas, scikit-learn or MLflow first (seconds of a start-up),
and ``recsys keys`` does not import the training code.
"""

from __future__ import annotations

import importlib
import logging

import click

# name -> "module:attribute" of each command, in the order --help lists them
COMMANDS = {
    "data": "commands.data:data",
    "report": "commands.report:report",
    "train": "training.cli:train",
    "models": "registry.cli:models",
    "serve": "serving.cli:serve",
    "keys": "serving.cli:keys",
    "export": "inference.cli:export",
}


class LazyGroup(click.Group):
    """A group whose commands are imported when one of them is asked for (click's lazy
    loading pattern)."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx) -> list[str]:
        return [*super().list_commands(ctx), *self.lazy]

    def get_command(self, ctx, name):
        if name in self.lazy:
            module, attribute = self.lazy[name].split(":")
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="loyalty-offers")
def main(verbose: int) -> None:
    """Personalized offers and churn risk for loyalty and retention marketing."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
