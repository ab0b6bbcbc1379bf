"""``recsys train`` and ``recsys models``: the training job and the registry from the shell."""

from __future__ import annotations

import sys

import click

from recsys import constants as C
from recsys.cli.common import fail_on_bad_data

EXIT_GATE_FAILED = 3


@click.command()
@click.option("--data", "data", required=True, help="Dataset: a directory of Parquet/CSV files or a database URL.")
@click.option("--as-of", "as_of", default=None, help="Train as of this date (default: the day after the last purchase).")
@click.option("--experiment", default="loyalty-offers", show_default=True, help="MLflow experiment name.")
@click.option("--seed", default=42, show_default=True, type=int, help="Random seed: same data and seed, same metrics.")
@click.option("--horizon-days", default=90, show_default=True, type=click.IntRange(7, 365), help="Churn horizon.")
@click.option("--churn-snapshots", default=18, show_default=True, type=click.IntRange(4, 200),
              help="Rolling-origin snapshots for the churn model.")
@click.option("--snapshot-every-days", default=14, show_default=True, type=click.IntRange(1, 90),
              help="Days between churn snapshots.")
@click.option("--until", type=click.Choice(["load", "features", "segmentation", "churn", "cf", "offers", "evaluate",
                                            "package", "register"]), default=None,
              help="Stop after this stage.")
@click.option("--no-register", is_flag=True, help="Package but do not register or promote.")
@click.option("--hold-out", "hold_out", multiple=True, default=("18",), show_default=True,
              help="Campaign ids held back for independent evaluation: their events are dropped and never "
                   "evaluated on (default: The Complete Journey's 18). Repeat for several; '' for none.")
@click.option("--tolerance", default=0.01, show_default=True, type=float,
              help="How far below the champion a gate metric may fall.")
@fail_on_bad_data
def train(data, as_of, experiment, seed, horizon_days, churn_snapshots, snapshot_every_days, until, no_register,
          hold_out, tolerance):
    """Train, evaluate, package, register and (if it passes the quality gate) promote a model.

    Tracks everything in MLflow (MLFLOW_TRACKING_URI, default sqlite:///mlflow.db). Exit status
    3 when the quality gate fails: the champion stays as it was.
    """
    from training.pipeline import TrainConfig, stages_to_run, tracking_uri
    from training.pipeline import train as run

    cfg = TrainConfig(data=data, as_of=as_of, experiment=experiment, seed=seed, horizon_days=horizon_days,
                      churn_snapshots=churn_snapshots, snapshot_every_days=snapshot_every_days, until=until,
                      register=not no_register, tolerance=tolerance,
                      held_out_campaigns=tuple(_campaign_id(c) for c in hold_out if c != ""))
    stages = stages_to_run(cfg)
    click.echo(f"tracking: {tracking_uri()}  experiment: {experiment}", err=True)
    with click.progressbar(length=len(stages), label="training", file=sys.stderr,
                           item_show_func=lambda s: s or "", show_eta=False) as bar:
        result = run(cfg, progress=lambda stage: bar.update(1, stage))
    click.echo(f"run {result.run_id}: " + ", ".join(f"{s} {t:.1f}s" for s, t in result.timings.items()))
    for key in ("churn_model_roc_auc", "churn_model_average_precision", "churn_recency_rule_roc_auc",
                "cf_als_all_ndcg_at_10", "cf_popularity_all_ndcg_at_10", "offers_engine_recall_at_10",
                "offers_personal_history_recall_at_10", "offers_popularity_recall_at_10"):
        if key in result.metrics:
            click.echo(f"  {key:40s} {result.metrics[key]:.4f}")
    if result.model_uri:
        click.echo(f"model: {result.model_uri}")
    if result.gate is not None:
        click.echo(result.gate.report())
        if not result.gate.passed:
            raise SystemExit(EXIT_GATE_FAILED)


def _campaign_id(text: str):
    return int(text) if text.lstrip("-").isdigit() else text


@click.group()
def models():
    """List registered versions, promote one, roll back."""


@models.command("list")
@click.option("--name", default="loyalty-offers", show_default=True)
def list_(name):
    """Versions, newest first, with aliases and gate metrics."""
    from training.registry import GATE, list_versions

    rows = list_versions(name)
    if not rows:
        click.echo(f"no versions of {name!r}")
        return
    click.echo(f"{'version':>8}  {'aliases':<22}" + "".join(f"{m:>32}" for m in GATE))
    for r in rows:
        vals = "".join(f"{'' if r[m] is None else format(r[m], '.4f'):>32}" for m in GATE)
        click.echo(f"{r['version']:>8}  {','.join(r['aliases']):<22}{vals}")


@models.command()
@click.argument("version")
@click.option("--name", default="loyalty-offers", show_default=True)
def promote(version, name):
    """Make VERSION the champion (the current one can be restored with rollback)."""
    from training.registry import RegistryError
    from training.registry import promote as do_promote

    try:
        do_promote(name, version)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name}: champion is now version {version}")


@models.command()
@click.option("--name", default="loyalty-offers", show_default=True)
def rollback(name):
    """Give the champion alias back to the previous champion."""
    from training.registry import RegistryError
    from training.registry import rollback as do_rollback

    try:
        old, new = do_rollback(name)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name}: champion moved from version {old} back to version {new}")


@click.group()
def export():
    """Batch files of the champion's offers and at-risk customers."""


@export.command("offers")
@click.option("--k", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--channel", type=click.Choice(["email", "app", "web", "sms"]), default=None)
@click.option("--as-of", "as_of", default=None, help="Date the offers must be valid on (default: today).")
@click.option("--data", default=None, help="Catalog and offer events from this source (default: the one the "
              "model was trained on).")
@click.option("--model", "model_uri", default="models:/loyalty-offers@champion", show_default=True)
@click.option("--out", required=True, help="Output file, .csv or .parquet.")
@fail_on_bad_data
def export_offers_cmd(k, channel, as_of, data, model_uri, out):
    """Ranked offers for every customer: customer_id, rank, offer_id, score, p_redeem,
    expected_value, reason and the offer's fields."""
    from training.exports import export_offers, load_model, read_offer_tables, write_atomic

    _check_suffix(out)
    bundle, version = load_model(model_uri)
    source = data or bundle.config.get("data_source")
    catalog, events = read_offer_tables(source) if source else (None, None)
    with click.progressbar(length=len(bundle.customers), label="ranking", file=sys.stderr) as bar:
        frame = export_offers(bundle, k=k, channel=channel, as_of=as_of, catalog=catalog, events=events,
                              progress=bar.update)
    path = write_atomic(frame, out)
    click.echo(f"{len(frame):,} rows for {frame['customer_id'].nunique():,} customers (model version "
               f"{version or '-'}) -> {path}")


@export.command("at-risk")
@click.option("--min-risk", default=C.RISK_BANDS[1], show_default=True, type=click.FloatRange(0, 1),
              help="churn probability from which a customer is listed (default: the high risk band)")
@click.option("--segment", default=None)
@click.option("--data", default=None, hidden=True)
@click.option("--model", "model_uri", default="models:/loyalty-offers@champion", show_default=True)
@click.option("--out", required=True, help="Output file, .csv or .parquet.")
def export_at_risk_cmd(min_risk, segment, data, model_uri, out):
    """Customers at or above --min-risk, sorted by risk x value."""
    from training.exports import export_at_risk, load_model, write_atomic

    _check_suffix(out)
    bundle, version = load_model(model_uri)
    frame = export_at_risk(bundle, min_risk=min_risk, segment=segment)
    path = write_atomic(frame, out)
    click.echo(f"{len(frame):,} customers at risk >= {min_risk} (model version {version or '-'}) -> {path}")


def _check_suffix(out: str) -> None:
    if not out.lower().endswith((".csv", ".parquet")):
        raise click.BadParameter("the file name must end in .csv or .parquet", param_hint="--out")
