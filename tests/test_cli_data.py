"""The ``recsys data`` commands: help, summaries, exit status 2 and nothing written on bad data."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from commands import main


@pytest.fixture
def runner():
    return CliRunner()


def all_commands(group, prefix=()):
    """Every command path, through click's own listing (the root group imports its commands
    when asked for them)."""
    import click

    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        yield (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, (*prefix, name))


def test_every_command_has_help(runner):
    commands = list(all_commands(main))
    assert ("data", "validate") in commands
    for path in commands:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Usage:" in result.output


def test_synth_then_validate(runner, tmp_path):
    out = tmp_path / "syn"
    result = runner.invoke(
        main, ["data", "synth", "--customers", "80", "--products", "40", "--seed", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "_truth" / "customers.parquet").exists()
    result = runner.invoke(main, ["data", "validate", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["customers"] == 80
    assert summary["rows"]["transactions"] == len(pd.read_parquet(out / "transactions.parquet"))
    assert set(summary["events"]) == {"sent", "viewed", "redeemed"}


def test_validate_prints_a_readable_summary(runner, synth_dir):
    result = runner.invoke(main, ["data", "validate", str(synth_dir)])
    assert result.exit_code == 0
    for word in ("transactions", "customers:", "offers:", "events:", "date range:"):
        assert word in result.output


def test_invalid_data_exits_2_naming_the_problem(runner, tmp_path, synth_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    tx = pd.read_parquet(synth_dir / "transactions.parquet")
    tx.loc[5, "quantity"] = None
    tx.to_parquet(bad / "transactions.parquet")
    result = runner.invoke(main, ["data", "validate", str(bad)])
    assert result.exit_code == 2
    assert "transactions.quantity" in result.output and "null" in result.output


def test_copy_of_invalid_data_writes_nothing(runner, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "transactions.csv").write_text("customer_id,product_id,timestamp,quantity,amount\n1,2,notadate,1,1.0\n")
    dest = tmp_path / "dest"
    result = runner.invoke(main, ["data", "copy", str(bad), str(dest)])
    assert result.exit_code == 2
    assert "transactions.timestamp" in result.output
    assert not dest.exists()


def test_copy_to_sqlite_and_back(runner, tmp_path, synth_dir):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    result = runner.invoke(main, ["data", "copy", str(synth_dir), url])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["data", "validate", url, "--json"])
    assert json.loads(result.output)["customers"] == 300


def test_missing_source_exits_2(runner, tmp_path):
    result = runner.invoke(main, ["data", "validate", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_a_command_imports_only_its_own_module():
    """`recsys serve` hands over to gunicorn without importing the service, pandas or MLflow
    first (seconds of every start-up); `recsys data` does not import the service or training."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from commands import main\n"
        "try:\n"
        "    main([sys.argv[1], '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('pandas', 'flask', 'mlflow', 'sklearn', 'serving.app', 'training.cli') "
        "if m in sys.modules))\n"
    )
    found = {}
    for command in ("serve", "data"):
        out = subprocess.run([sys.executable, "-c", probe, command], capture_output=True, text=True, check=True)
        found[command] = out.stdout.strip().splitlines()[-1]
    assert found["serve"] == "[]"
    assert "pandas" in found["data"] and "serving.app" not in found["data"] and "training.cli" not in found["data"]
