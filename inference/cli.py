"""``recsys export``: batch files of the champion's offers and at-risk customers."""

from __future__ import annotations

import os
import sys

import click
import pandas as pd

from recsys import constants as C
from shell import events_option, fail_on_bad_data

ENGINE = click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="local: this process; spark: a Spark cluster (RECSYS_SPARK_MASTER, default local[2]; docs/scale.md).",
)


@click.group()
def export():
    """Batch files of the champion's offers and at-risk customers."""


@export.command("offers")
@click.option("--k", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--channel", type=click.Choice(C.CHANNEL_NAMES), default=None)
@click.option("--as-of", "as_of", default=None, help="Date the offers must be valid on (default: today).")
@click.option(
    "--data",
    default=None,
    help="Catalog and offer events from this source (default: the one the model was trained on).",
)
@click.option("--model", "model_uri", default=C.CHAMPION_URI, show_default=True)
@events_option("its events count for caps, and the held-back offers are recorded there")
@click.option("--out", required=True, help="Output file, .csv or .parquet (with --engine spark: a Parquet dataset).")
@ENGINE
@click.option(
    "--customers",
    "customers_path",
    default=None,
    help="Parquet file or dataset with a customer_id column: rank these (default: every customer of the model).",
)
@fail_on_bad_data
def export_offers_cmd(k, channel, as_of, data, model_uri, events_url, out, engine, customers_path):
    """Ranked offers for every customer: customer_id, rank, offer_id, tier, score, p_redeem,
    expected_value, reason, reason_code, cold_start and the offer's fields.

    Control groups as the service holds them back (RECSYS_CONTROL_SHARE and the other settings
    of docs/incrementality.md): the offers held back go to NAME.held_out.EXT beside the file and
    are recorded as held_out events in the events store, before either file is written.
    """
    from inference.exports import export_decisions, held_out_path, load_resolved, read_offer_tables, write_atomic
    from recsys.data.store_events import combine_offer_events, read_event_store
    from recsys.incrementality import ControlGroups

    _check_suffix(out)
    try:
        control = ControlGroups.from_env(os.environ)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _check_engine(engine, out)
    resolved = load_resolved(model_uri)
    bundle, version = resolved.bundle, resolved.version
    source = data or bundle.config.get("data_source")
    catalog, events = read_offer_tables(source) if source else (None, None)
    events = combine_offer_events(events, read_event_store(events_url))
    customers = _read_customers(customers_path) if customers_path else None
    if customers is not None:
        unknown = ~customers[C.CUSTOMER_ID].isin(bundle.customers.index)
        if unknown.any():
            click.secho(
                f"note: {int(unknown.sum()):,} of the customers are new to the model (ranked as cold start)", err=True
            )
    if engine == "spark":
        options = {"k": k, "channel": channel, "as_of": as_of, "control": control}
        _offers_on_spark(resolved, customers, events, catalog, options, events_url, out)
        return
    count = len(bundle.customers) if customers is None else len(customers)
    with click.progressbar(length=count, label="ranking", file=sys.stderr) as bar:
        frame, held = export_decisions(
            bundle,
            k=k,
            channel=channel,
            as_of=as_of,
            catalog=catalog,
            events=events,
            control=control,
            progress=bar.update,
            customers=None if customers is None else pd.Index(customers[C.CUSTOMER_ID]),
        )
    _record_held(held, events_url, catalog if catalog is not None else bundle.catalog)
    if frame.empty:
        _say_why_empty(catalog if catalog is not None else bundle.catalog, as_of)
    path = write_atomic(frame, out)
    kept = write_atomic(held, held_out_path(out))
    click.echo(
        f"{len(frame):,} rows for {frame['customer_id'].nunique():,} customers (model version "
        f"{version or '-'}) -> {path}; {len(held):,} offers held back as control (share {control.share:g}, "
        f"global {control.global_share:g}) -> {kept}, recorded in {events_url}"
    )


def _offers_on_spark(resolved, customers, events, catalog, options: dict, events_url, out) -> None:
    from inference.exports import held_out_path, write_atomic
    from inference.spark import export_offers_spark
    from recsys.spark import write_dataset

    offers, held_rows = export_offers_spark(
        resolved.path, customers=customers, events=events, catalog=catalog, **options
    )
    rows = write_dataset(offers, out)
    held = held_rows.toPandas()
    _record_held(held, events_url, catalog if catalog is not None else resolved.bundle.catalog)
    kept = write_atomic(held, held_out_path(out))
    click.echo(
        f"{rows:,} rows (model version {resolved.version or '-'}, on Spark) -> {out}; {len(held):,} offers held "
        f"back as control -> {kept}, recorded in {events_url}"
    )


def _record_held(held: pd.DataFrame, events_url, catalog: pd.DataFrame) -> None:
    """The held-back offers as held_out events in the events store (or a warning without one)."""
    from inference.exports import held_out_events
    from recsys.data.event_store import EventStore

    if len(held) and events_url:
        EventStore(events_url).add(held_out_events(held, catalog), conflicts="ignore")
    elif len(held):
        click.secho(
            "warning: no events store (--events ''): the held-back offers are in the side file only",
            fg="yellow",
            err=True,
        )


def _read_customers(path: str) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    if C.CUSTOMER_ID not in frame:
        raise click.BadParameter(
            f"{path}: needs a {C.CUSTOMER_ID} column; it has {', '.join(map(str, frame.columns))}",
            param_hint="--customers",
        )
    return frame[[C.CUSTOMER_ID]].drop_duplicates()


def _say_why_empty(catalog, as_of) -> None:
    from recsys.offers import no_valid_offer

    why = no_valid_offer(catalog, as_of or pd.Timestamp.now())
    if why:
        click.secho(f"warning: nothing to send: {why}", fg="yellow", err=True)


@export.command("at-risk")
@click.option(
    "--min-risk",
    default=C.HIGH_RISK,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="churn probability from which a customer is listed (default: the high risk band)",
)
@click.option("--segment", default=None)
@click.option("--data", default=None, hidden=True)
@click.option("--model", "model_uri", default=C.CHAMPION_URI, show_default=True)
@click.option("--out", required=True, help="Output file, .csv or .parquet (with --engine spark: a Parquet dataset).")
@ENGINE
def export_at_risk_cmd(min_risk, segment, data, model_uri, out, engine):
    """Customers at or above --min-risk, sorted by risk x value."""
    from inference.exports import export_at_risk, load_resolved, write_atomic

    _check_suffix(out)
    _check_engine(engine, out)
    resolved = load_resolved(model_uri)
    bundle, version = resolved.bundle, resolved.version
    if engine == "spark":
        from inference.spark import export_at_risk_spark
        from recsys.spark import write_dataset

        rows = write_dataset(export_at_risk_spark(resolved.path, min_risk=min_risk, segment=segment), out)
        click.echo(f"{rows:,} customers at risk >= {min_risk} (model version {version or '-'}, on Spark) -> {out}")
        return
    frame = export_at_risk(bundle, min_risk=min_risk, segment=segment)
    path = write_atomic(frame, out)
    click.echo(f"{len(frame):,} customers at risk >= {min_risk} (model version {version or '-'}) -> {path}")


def _check_engine(engine: str, out: str) -> None:
    if engine == "spark" and not out.lower().endswith(".parquet"):
        raise click.BadParameter(
            "with --engine spark the output is a Parquet dataset: end its name in .parquet", param_hint="--out"
        )


def _check_suffix(out: str) -> None:
    if not out.lower().endswith((".csv", ".parquet")):
        raise click.BadParameter("the file name must end in .csv or .parquet", param_hint="--out")
