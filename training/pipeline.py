"""One command trains, evaluates, packages and registers: the stages in order, each in its own
MLflow run.

``train(TrainConfig(...))`` runs the stages under one parent MLflow run, each stage in a nested
run with its parameters, metrics, timing, tables and plots:

load -> features -> segmentation -> churn -> cf -> offers -> evaluate -> package -> register

A stage is a function of the config, the tracker and the declared results of earlier stages
(``STAGE_INPUTS``), and returns a declared result (training.stages). Everything is computed as
of ``as_of`` (default: the day after the last transaction) from data strictly before it. The
evaluations are temporal backtests that refit their models on earlier data (docs/training.md).
``until`` stops after a stage (MLproject entry points use it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import mlflow
import numpy as np

from recsys.bundle import ModelBundle
from registry.store import tracking_uri
from training.config import STAGES, TrainConfig
from training.gate import GateResult
from training.memory import release_free_memory
from training.stages import churn, customers, offers, package
from training.tracking import Tracker, git_commit

logger = logging.getLogger(__name__)

# Each stage's function and the earlier stages whose results it takes, by name.
STAGE_FUNCTIONS: dict[str, Callable] = {
    "load": customers.load,
    "features": customers.features,
    "segmentation": customers.segmentation,
    "churn": churn.churn,
    "cf": offers.cf,
    "offers": offers.offers,
    "evaluate": offers.evaluate,
    "package": package.package,
    "register": package.register,
}
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "load": (),
    "features": ("load",),
    "segmentation": ("load", "features"),
    "churn": ("load", "features", "segmentation"),
    "cf": ("load",),
    "offers": ("load", "churn", "cf"),
    "evaluate": ("load",),
    "package": ("load", "features", "churn", "offers", "evaluate"),
    "register": ("package", "churn"),
}
assert tuple(STAGE_FUNCTIONS) == STAGES == tuple(STAGE_INPUTS)
# Parts of a result no stage after the named one reads, released when it ends (a dotted name is
# a field of a field): the purchase history, the validated transactions (0.4 and 0.8 GiB at
# ten times The Complete Journey, when held in memory) and the churn snapshots' stacked
# features (18 snapshots of every customer: about 1 GiB at a hundred times) would otherwise stay
# through cf, offers and evaluate, the stages with the run's peak memory; those read the basket
# lines instead, and packaging the churn models and their evaluation snapshot.
RELEASED_AFTER: dict[str, dict[str, tuple[str, ...]]] = {
    "churn": {"features": ("history",), "load": ("ds.transactions",), "churn": ("backtest.data",)}
}


@dataclass
class TrainResult:
    run_id: str
    metrics: dict
    timings: dict
    model_uri: str | None = None
    version: str | None = None
    gate: GateResult | None = None
    bundle: ModelBundle | None = None


def _start_parent(config: TrainConfig):
    mlflow.set_tracking_uri(tracking_uri())
    # `mlflow run` made the parent run already; forget its id once resumed, or MLflow would hand
    # the same run back to the first nested stage.
    inside_project = os.environ.pop("MLFLOW_RUN_ID", None)
    if inside_project:
        return mlflow.start_run(run_id=inside_project)
    mlflow.set_experiment(config.experiment)
    return mlflow.start_run(run_name="train")


def _released(result, fields):
    """``result`` (a dataclass) with ``fields`` set to None; ``a.b`` is field b of field a."""
    for field in fields:
        name, _, inner = field.partition(".")
        value = _released(getattr(result, name), (inner,)) if inner else None
        result = dataclasses.replace(result, **{name: value})
    return result


def train(config: TrainConfig, progress: Callable[[str], None] | None = None) -> TrainResult:
    """Run the stages under one parent MLflow run; ``progress(stage)`` is called as each starts."""
    stages = config.stages()
    np.random.seed(config.seed)
    results: dict[str, object] = {}
    timings: dict[str, float] = {}
    with contextlib.ExitStack() as stack, _start_parent(config) as parent:
        # the basket lines' database goes when the run ends, failed or not
        stack.callback(lambda: results["load"].close() if "load" in results else None)
        track = Tracker(parent.info.run_id)
        commit = git_commit()
        mlflow.set_tags({"stages": ",".join(stages), **({"git_commit": commit} if commit else {})})
        mlflow.log_params({"seed": config.seed, "horizon_days": config.horizon_days, "data": config.data})
        for stage in stages:
            if progress is not None:
                progress(stage)
            t = time.perf_counter()
            with mlflow.start_run(run_name=stage, nested=True):
                inputs = {name: results[name] for name in STAGE_INPUTS[stage]}
                results[stage] = STAGE_FUNCTIONS[stage](config, track, **inputs)
                del inputs  # the results as the stage saw them: the releases below must free them
                elapsed = time.perf_counter() - t
                mlflow.log_metric("seconds", elapsed)
            timings[stage] = elapsed
            for name, fields in RELEASED_AFTER.get(stage, {}).items():
                results[name] = _released(results[name], fields)
            mlflow.log_metric(f"stage_{stage}_seconds", elapsed)
            release_free_memory()  # once nothing holds what this stage and the release let go
            logger.info("stage %s: %.1f s", stage, elapsed)
        mlflow.log_metric("total_seconds", sum(timings.values()))
    packaged, registered = results.get("package"), results.get("register")
    return TrainResult(
        track.run_id,
        track.metrics,
        timings,
        packaged.model_uri if packaged else None,
        registered.version if registered else None,
        registered.gate if registered else None,
        packaged.bundle if packaged else None,
    )
