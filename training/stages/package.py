"""Stages package and register: the bundle logged as an MLflow model, then a registered
candidate that the quality gate may promote to champion."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import infer_signature

from recsys import constants as C
from recsys.bundle import ModelBundle
from recsys.evaluation import profile_sample
from recsys.io import json_safe
from registry.store import register_candidate
from training.config import TrainConfig
from training.gate import GateResult, quality_gate
from training.pyfunc import LoyaltyOffersModel
from training.stages.churn import Churn
from training.stages.customers import Features, Loaded
from training.stages.offers import Evaluation, Offers
from training.tracking import Tracker

REQUIREMENTS = ("mlflow", "pandas", "numpy", "scipy", "scikit-learn", "implicit", "pyarrow", "duckdb", "threadpoolctl")


@dataclass(frozen=True)
class Package:
    bundle: ModelBundle
    model_uri: str


@dataclass(frozen=True)
class Registered:
    version: str
    gate: GateResult


def package(
    cfg: TrainConfig,
    track: Tracker,
    load: Loaded,
    features: Features,
    churn: Churn,
    offers: Offers,
    evaluate: Evaluation,
) -> Package:
    config = {
        "as_of": str(load.as_of.date()),
        "horizon_days": cfg.horizon_days,
        "data_source": load.ds.source,
        "data_fingerprint": load.fingerprint,
        "data_last_date": str(load.last.date()),
        "churn_eval_at": None if churn.backtest.eval_at is None else str(churn.backtest.eval_at.date()),
        "seed": cfg.seed,
        "trained_at": pd.Timestamp.now("UTC").isoformat(),
        "run_id": mlflow.active_run().info.run_id,
        "train_config": json_safe(asdict(cfg)),
    }
    compared = {*C.GATE_METRICS, *(b for bs in (*C.GATE_BASELINES.values(), *C.OTHER_BASELINES.values()) for b in bs)}
    kept = {k: v for k, v in track.metrics.items() if k in compared or k.endswith("_seconds")}
    profile = profile_sample(
        features.features.join(churn.customers[["churn_probability"]], how="left"), seed=cfg.seed
    )  # what the next training's drift is measured against
    bundle = ModelBundle(
        offers.ranker,
        churn.model,
        churn.customers,
        load.ds.offers,
        config,
        kept,
        lift=evaluate.lift,
        history=features.weekly,
        profile=profile,
        churn_backtest=churn.backtest.model,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = bundle.save(Path(tmp) / "bundle")
        example = pd.DataFrame({C.CUSTOMER_ID: churn.customers.index[:3].tolist()})
        output = LoyaltyOffersModel(bundle).predict(None, example, {"k": 3})
        signature = infer_signature(example, output, params={"k": C.DEFAULT_K, "channel": "", "as_of": ""})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=LoyaltyOffersModel(),
            artifacts={"bundle": str(path)},
            signature=signature,
            input_example=example,
            pip_requirements=[f"{p}=={version(p)}" for p in REQUIREMENTS],
        )
    mlflow.log_dict(config, "bundle_config.json")
    return Package(bundle, info.model_uri)


def register(cfg: TrainConfig, track: Tracker, package: Package, churn: Churn) -> Registered:
    version_ = register_candidate(package.model_uri, cfg.model_name, track.run_id)
    gate = quality_gate(
        cfg.model_name,
        version_,
        tolerance=cfg.tolerance,
        baseline_tolerance=cfg.baseline_tolerance,
        promote=cfg.promote,
        force=cfg.force_promote,
        evaluation=churn.evaluation_set,
        evaluation_at=churn.backtest.eval_at,
        profile=package.bundle.profile,
    )
    mlflow.log_dict(gate.as_dict(), "quality_gate.json")
    if gate.drift is not None and len(gate.drift):
        track.log_table(gate.drift.set_index("feature"), "gate/drift.csv")
        track.log_metrics({f"drift_psi_{r.feature}": r.psi for r in gate.drift.itertuples()})
        track.log_metrics({"drift_features_shifted": int(gate.drift["shifted"].sum())})
    if churn.evaluation_set is not None:
        track.log_table(churn.evaluation_set, "gate/churn_evaluation_set.csv")
    track.log_metrics({f"gate_champion_{k}": v for k, v in gate.champion_metrics.items()})
    client = mlflow.tracking.MlflowClient()
    mlflow.set_tag("quality_gate", gate.status)
    client.set_tag(track.run_id, "quality_gate", gate.status)
    client.set_model_version_tag(cfg.model_name, version_, "quality_gate", gate.status)
    return Registered(version_, gate)
