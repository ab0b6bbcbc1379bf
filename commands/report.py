"""``recsys report``: segment and retention reports printed and written as CSV, PNG and JSON."""

from __future__ import annotations

import click
import pandas as pd

from recsys.constants import SEED
from recsys.customers.retention import DEFAULT_ACTIVITY_DAYS
from recsys.data import load_dataset
from shell import fail_on_bad_data, steps

_data = click.option(
    "--data", "source", required=True, help="A directory of <table>.parquet/.csv files or a SQLAlchemy URL."
)
_out = click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for the CSV tables, PNG plots and metrics.json.",
)
_as_of = click.option(
    "--as-of", default=None, help="Report date (YYYY-MM-DD); default: the day after the last purchase."
)


@click.group()
def report() -> None:
    """Segment and retention reports."""


def _print_metrics(metrics: dict) -> None:
    for key, value in metrics.items():
        click.echo(f"  {key:<34}{value:.4g}" if isinstance(value, float) else f"  {key:<34}{value}")


@report.command()
@_data
@_out
@_as_of
@click.option("--seed", default=SEED, show_default=True, type=int, help="Seed for k-means.")
@fail_on_bad_data
def segments(source: str, out: str, as_of: str | None, seed: int) -> None:
    """RFM segments, behavioural clusters and BG/NBD P(alive) per customer."""
    from recsys.reporting.reports import segment_report

    with steps(["load", "features, segments, clusters, BG/NBD", "write"], "segments") as bar:
        for step in bar:
            if step == "load":
                ds = load_dataset(source)
            elif step.startswith("features"):
                rep = segment_report(ds, as_of, seed=seed)
            else:
                written = rep.save(out)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        click.echo("RFM segments:")
        click.echo(rep.tables["segments"].round(3).to_string())
        click.echo("\nBehavioural clusters:")
        click.echo(rep.tables["clusters"][["customers", "description"]].to_string())
    click.echo("\nMetrics:")
    _print_metrics(rep.metrics)
    click.echo(f"\nwrote {len(written)} files to {out}")
    rep.close()


@report.command()
@_data
@_out
@_as_of
@click.option(
    "--activity-days",
    default=DEFAULT_ACTIVITY_DAYS,
    show_default=True,
    type=click.IntRange(1),
    help="A customer is active on a date when they bought within this many days up to it.",
)
@fail_on_bad_data
def retention(source: str, out: str, as_of: str | None, activity_days: int) -> None:
    """Retention, churn and repeat-purchase rates, and the cohort retention matrix."""
    from recsys.reporting.reports import retention_report

    ds = load_dataset(source)
    rep = retention_report(ds, as_of, activity_days=activity_days)
    written = rep.save(out)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        click.echo("Retention over trailing 90-day periods:")
        click.echo(
            rep.tables["retention_over_time"]
            .round({"retention_rate": 1, "churn_rate": 1, "repeat_purchase_rate": 1})
            .to_string(index=False)
        )
        click.echo("\nCohort retention (share of cohort buying, by months since first purchase):")
        click.echo(rep.tables["cohorts"].round(2).to_string())
    click.echo("\nMetrics:")
    _print_metrics(rep.metrics)
    click.echo(f"\nwrote {len(written)} files to {out}")
    rep.close()
