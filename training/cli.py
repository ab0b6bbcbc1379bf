"""``recsys train``: the training job from the shell."""

from __future__ import annotations

import contextlib
import signal
import sys

import click

from recsys import constants as C
from shell import events_option, fail_on_bad_data
from training.config import STAGES, TrainConfig

EXIT_GATE_FAILED = 3


@contextlib.contextmanager
def terminate_as_exit():
    """SIGTERM (a scheduler stopping the job, a container's shutdown) raised as ``SystemExit``
    (status 143, as the signal's own) while training runs, so the stages unwind: their MLflow runs
    end FAILED instead of staying RUNNING, and temporary files (the basket lines' database, 0.3 GB
    at ten times The Complete Journey) are removed."""

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command()
@click.option("--data", "data", required=True, help="Dataset: a directory of Parquet/CSV files or a database URL.")
@click.option(
    "--as-of", "as_of", default=None, help="Train as of this date (default: the day after the last purchase)."
)
@click.option("--experiment", default=C.MODEL_NAME, show_default=True, help="MLflow experiment name.")
@click.option(
    "--seed", default=C.SEED, show_default=True, type=int, help="Random seed: same data and seed, same metrics."
)
@click.option(
    "--horizon-days",
    default=C.DEFAULT_HORIZON_DAYS,
    show_default=True,
    type=click.IntRange(7, 365),
    help="Churn horizon.",
)
@click.option(
    "--churn-snapshots",
    default=18,
    show_default=True,
    type=click.IntRange(4, 200),
    help="Rolling-origin snapshots for the churn model.",
)
@click.option(
    "--snapshot-every-days",
    default=14,
    show_default=True,
    type=click.IntRange(1, 90),
    help="Days between churn snapshots.",
)
@click.option("--until", type=click.Choice(STAGES), default=None, help="Stop after this stage.")
@click.option("--no-register", is_flag=True, help="Package but do not register or promote.")
@click.option(
    "--hold-out",
    "hold_out",
    multiple=True,
    help="Campaign ids held back for independent evaluation: their events are dropped and never "
    "evaluated on. Default: campaign 18 on The Complete Journey (as imported by recsys data "
    "import-completejourney), none on other data. Repeat for several; '' for none.",
)
@click.option(
    "--tolerance",
    default=0.01,
    show_default=True,
    type=float,
    help="How far below the champion a gate metric may fall.",
)
@click.option(
    "--baseline-tolerance",
    default=C.GATE_BASELINE_TOLERANCE,
    show_default=True,
    type=float,
    help="How far below a peer baseline (logistic regression, personal history) a gate metric may fall.",
)
@click.option(
    "--model-name",
    default=C.MODEL_NAME,
    show_default=True,
    help="Registered model to add the version to: another model line (e.g. another horizon) gets its own.",
)
@click.option("--no-promote", is_flag=True, help="Register and gate the model, but leave the champion as it is.")
@click.option(
    "--force-promote",
    is_flag=True,
    help="Promote even when the quality gate fails or could not evaluate; recorded as quality_gate=forced.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="Where the purchase history (baskets, first purchases, department spend) is reduced from the "
    "lines: local: this process; spark: a Spark cluster (RECSYS_SPARK_MASTER, default local[2]; "
    "--data must be a directory of Parquet files; docs/scale.md).",
)
@click.option(
    "--aggregates",
    default=None,
    help="With --engine spark: the directory the cluster writes the history's tables to, on a path "
    "both reach (default: a temporary directory, removed after the run).",
)
@click.option(
    "--max-examples",
    type=click.IntRange(min=0),
    default=C.MAX_REDEMPTION_EXAMPLES,
    show_default=True,
    help="Past sent offers the redemption model learns from: beyond it, every redemption and a "
    "weighted random share of the other offers (0: every sent offer).",
)
@events_option("read with the dataset's offer_events")
@fail_on_bad_data
def train(
    data,
    as_of,
    experiment,
    seed,
    horizon_days,
    churn_snapshots,
    snapshot_every_days,
    until,
    no_register,
    hold_out,
    tolerance,
    baseline_tolerance,
    model_name,
    no_promote,
    force_promote,
    engine,
    aggregates,
    max_examples,
    events_url,
):
    """Train, evaluate, package, register and (if it passes the quality gate) promote a model.

    Tracks everything in MLflow (MLFLOW_TRACKING_URI, default sqlite:///mlflow.db). Exit status
    3 when the quality gate fails: the champion stays as it was.
    """
    from registry.store import tracking_uri

    if aggregates and engine != "spark":
        raise click.UsageError("--aggregates is where --engine spark writes its tables; add --engine spark")

    cfg = TrainConfig(
        data=data,
        as_of=as_of,
        experiment=experiment,
        seed=seed,
        horizon_days=horizon_days,
        churn_snapshots=churn_snapshots,
        snapshot_every_days=snapshot_every_days,
        until=until,
        register=not no_register,
        tolerance=tolerance,
        baseline_tolerance=baseline_tolerance,
        model_name=model_name,
        promote=not no_promote,
        force_promote=force_promote,
        held_out_campaigns=tuple(_campaign_id(c) for c in hold_out if c != "") if hold_out else None,
        events_url=events_url or None,
        engine=engine,
        aggregates=aggregates,
        max_examples=max_examples or None,
    )
    click.echo(f"tracking: {tracking_uri()}  experiment: {experiment}", err=True)
    _print_result(_run(cfg))


def _run(cfg: TrainConfig):
    """The stages with a progress bar on stderr, SIGTERM unwinding them (terminate_as_exit)."""
    from training.pipeline import train as run

    bar = click.progressbar(
        length=len(cfg.stages()), label="training", file=sys.stderr, item_show_func=lambda s: s or "", show_eta=False
    )
    with bar, terminate_as_exit():
        return run(cfg, progress=lambda stage: bar.update(1, stage))


def _print_result(result) -> None:
    """The run's timings, key metrics and gate report; exit status 3 when the gate failed."""
    click.echo(f"run {result.run_id}: " + ", ".join(f"{s} {t:.1f}s" for s, t in result.timings.items()))
    recall, ndcg = C.at_k("recall"), C.at_k("ndcg")
    for key in (
        "churn_model_roc_auc",
        "churn_model_average_precision",
        "churn_recency_rule_roc_auc",
        f"cf_als_all_{ndcg}",
        f"cf_popularity_all_{ndcg}",
        f"offers_engine_{recall}",
        f"offers_personal_history_{recall}",
        f"offers_popularity_{recall}",
    ):
        if key in result.metrics:
            click.echo(f"  {key:40s} {result.metrics[key]:.4f}")
    if result.model_uri:
        click.echo(f"model: {result.model_uri}")
    if result.gate is not None:
        click.echo(result.gate.report())
        if not result.gate.passed and not result.gate.forced:
            raise SystemExit(EXIT_GATE_FAILED)


def _campaign_id(text: str):
    return int(text) if text.lstrip("-").isdigit() else text
