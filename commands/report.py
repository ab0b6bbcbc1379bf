"""``recsys report``: segment and retention reports printed and written as CSV, PNG and JSON."""

from __future__ import annotations

import click
import pandas as pd

from recsys.constants import SEED
from recsys.customers.retention import DEFAULT_ACTIVITY_DAYS
from recsys.data import load_dataset
from shell import events_option, fail_on_bad_data, steps

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
@events_option("read with the dataset's offer_events (the offers a customer was sent and redeemed)")
@fail_on_bad_data
def segments(source: str, out: str, as_of: str | None, seed: int, events_url: str) -> None:
    """RFM segments, behavioural clusters and BG/NBD P(alive) per customer."""
    from recsys.data.store_events import with_store_events
    from recsys.reporting.reports import segment_report

    with steps(["load", "features, segments, clusters, BG/NBD", "write"], "segments") as bar:
        for step in bar:
            if step == "load":
                ds = with_store_events(load_dataset(source), events_url or None)[0]
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


@report.command()
@_data
@_out
@click.option(
    "--window-days",
    default=14,
    show_default=True,
    type=click.IntRange(1, 365),
    help="Outcomes are counted over this many days after each assignment.",
)
@click.option("--campaign", default=None, help="Only this campaign's offers.")
@click.option(
    "--margin",
    default=0.3,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Gross margin on revenue, for incremental profit.",
)
@events_option("read with the dataset's offer_events")
@click.option(
    "--hold-out",
    "hold_out",
    multiple=True,
    help="Campaigns held back for independent evaluation, left out of the report (default as in "
    "recsys train: campaign 18 on The Complete Journey, none on other data; '' for none).",
)
@fail_on_bad_data
def lift(
    source: str,
    out: str,
    window_days: int,
    campaign: str | None,
    margin: float,
    events_url: str | None,
    hold_out: tuple[str, ...],
) -> None:
    """Measured lift of every offer and campaign against its randomised control group."""
    from recsys.data.store_events import with_store_events
    from recsys.offers import held_out_for, hold_out_events
    from recsys.reporting.lift import lift_report

    ds, added, unknown = with_store_events(load_dataset(source), events_url or None)
    asked = tuple(int(c) if c.isdigit() else c for c in hold_out if c) if hold_out else None
    held = held_out_for(ds, asked)
    ds, _ = hold_out_events(ds, held)
    if held:
        click.echo(f"held out for independent evaluation: campaign(s) {', '.join(map(str, held))}")
    if added or unknown:
        click.echo(f"events store: {added:,} events added, {unknown:,} left out (offer not in the catalog)")
    rep = lift_report(ds, window_days=window_days, campaign=campaign, margin=margin)
    written = rep.save(out)
    table = rep.tables["lift"].reset_index()
    with pd.option_context("display.width", 200, "display.max_columns", 12, "display.max_colwidth", 90):
        cols = [
            c
            for c in (
                "level",
                "group",
                "treated",
                "control",
                "incremental_profit",
                "incremental_profit_low",
                "incremental_profit_high",
                "verdict",
            )
            if c in table
        ]
        click.echo(table[cols].round(3).to_string(index=False) if len(table) else "no offer was sent or held back")
    click.echo(f"\n{rep.metrics['note']}")
    click.echo(f"wrote {len(written)} files to {out}")
    rep.close()
