"""Shared fixtures: small generated datasets and throwaway PostgreSQL databases."""

from __future__ import annotations

import os
import uuid

import pandas as pd
import pytest

from recsys.data.sources import write_tables
from recsys.data.synthetic import TRUTH_DIR, generate

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

PG_ADMIN_URL = os.environ.get("RECSYS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def synth():
    """A small synthetic dataset and its planted ground truth (tables, truth)."""
    return generate(customers=300, products=120, seed=7)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory, synth):
    """The small synthetic dataset written as Parquet, ground truth beside it."""
    tables, truth = synth
    path = tmp_path_factory.mktemp("synth") / "data"
    write_tables(tables, path, extras={TRUTH_DIR: truth})
    return path


@pytest.fixture
def postgres_url():
    """A new, empty PostgreSQL database, dropped after the test."""
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"no PostgreSQL server answers at {PG_ADMIN_URL}: {exc.orig}")
    name = f"recsys_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


def frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Assert two canonical tables hold the same values (list cells compared as lists)."""
    assert list(a.columns) == list(b.columns)
    a = a.reset_index(drop=True)
    b = b.reset_index(drop=True)
    for col in a.columns:
        if a[col].dtype == object:
            left = a[col].map(lambda v: None if v is None else list(v)).tolist()
            right = b[col].map(lambda v: None if v is None else list(v)).tolist()
            assert left == right, col
        else:
            pd.testing.assert_series_equal(a[col], b[col], check_dtype=False, check_names=False)


@pytest.fixture(scope="session")
def cj_dataset():
    """The Complete Journey as a validated Dataset (built from the installed package)."""
    from recsys.data.completejourney import build_tables
    from recsys.data.dataset import Dataset
    from recsys.data.validate import validate_tables

    return Dataset(**validate_tables(build_tables())[0])


def train_bundle(tmp_path_factory, data, name: str, **config):
    """Train on ``data`` up to the package stage in a throwaway tracking store: (result, bundle dir)."""
    import mlflow

    from training.config import TrainConfig
    from training.pipeline import train

    tmp = tmp_path_factory.mktemp(name)
    mp = pytest.MonkeyPatch()
    mp.chdir(tmp)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
    try:
        result = train(
            TrainConfig(
                data=str(data), experiment=name, horizon_days=30, min_campaign_offers=5, until="package", **config
            )
        )
    finally:
        mp.undo()
        mlflow.set_tracking_uri(None)
    return result, result.bundle.save(tmp / "model")


@pytest.fixture(scope="session")
def synth_bundle_dir(tmp_path_factory, synth_dir):
    """A model bundle trained on the small synthetic dataset (no registration)."""
    return train_bundle(
        tmp_path_factory,
        synth_dir,
        "bundle",
        churn_snapshots=14,
        als={"factors": 16, "iterations": 8, "regularization": 0.5},
    )[1]


def pytest_collection_modifyitems(config, items):
    # The README test (make run, then every README command) takes most of the suite's time: it
    # comes first, so that with several workers (make test) the other files run beside it.
    items.sort(key=lambda item: not item.nodeid.startswith("tests/test_readme.py"))


@pytest.fixture(scope="session")
def synth_experiments():
    """Synthetic data with two randomised campaigns and planted effects (tables, truth)."""
    return generate(customers=1500, products=120, seed=11, experiments=2)


@pytest.fixture(scope="session")
def synth_experiments_dir(tmp_path_factory, synth_experiments):
    tables, truth = synth_experiments
    path = tmp_path_factory.mktemp("synthx") / "data"
    write_tables(tables, path, extras={TRUTH_DIR: truth})
    return path


@pytest.fixture(scope="session")
def lift_bundle(synth_experiments_dir, tmp_path_factory):
    """A bundle trained on the synthetic data with randomised campaigns (no registration)."""
    return train_bundle(
        tmp_path_factory, synth_experiments_dir, "lift", churn_snapshots=10, als={"factors": 8, "iterations": 4}
    )


def register_bundle(tracking_uri: str, bundle_dir, name: str = "loyalty-offers", champion: bool = True) -> str:
    """Log ``bundle_dir`` as an MLflow model in ``tracking_uri``, register it as a new version of
    ``name`` (champion unless told otherwise, its gate recorded as passed); the version."""
    import shutil
    import tempfile
    from pathlib import Path

    import mlflow
    from mlflow.tracking import MlflowClient

    from training.pyfunc import LoyaltyOffersModel

    folder = Path(tracking_uri.removeprefix("sqlite:///")).parent
    mlflow.set_tracking_uri(tracking_uri)
    try:
        client = MlflowClient(tracking_uri)
        if client.get_experiment_by_name("registered-for-tests") is None:
            client.create_experiment("registered-for-tests", artifact_location=(folder / "artifacts").as_uri())
        mlflow.set_experiment("registered-for-tests")
        with tempfile.TemporaryDirectory() as tmp, mlflow.start_run():
            bundle = shutil.copytree(bundle_dir, Path(tmp) / "bundle")  # packaged as the training job does
            info = mlflow.pyfunc.log_model(
                name="model", python_model=LoyaltyOffersModel(), artifacts={"bundle": str(bundle)}
            )
        version = str(mlflow.register_model(info.model_uri, name).version)
        client.set_model_version_tag(name, version, "quality_gate", "passed")
        if champion:
            client.set_registered_model_alias(name, "champion", version)
    finally:
        mlflow.set_tracking_uri(None)
    return version


def keyed_service(bundle_dir, tmp, **config):
    """The app on ``bundle_dir`` with a key of each role, its keys file and events store in
    ``tmp``: (app, {role: key})."""
    from serving import create_app
    from serving.auth import KeyStore

    store = KeyStore(tmp / "keys.json")
    keys = {role: store.create(role, f"test {role}") for role in ("read", "events", "admin")}
    app = create_app(
        {
            "model_uri": str(bundle_dir),
            "api_keys_file": str(tmp / "keys.json"),
            "events_url": f"sqlite:///{tmp / 'events.db'}",
            **config,
        }
    )
    return app, keys


@pytest.fixture(scope="module")
def offer_ranker(synth):
    """A ranker fitted on the synthetic data with churn risks, and the latest campaign's offers plus a
    retention offer (from risk 0.6): (dataset, ranker, catalog, as_of)."""
    import numpy as np

    from recsys import constants as C
    from recsys.data.dataset import Dataset
    from recsys.data.validate import validate_tables
    from recsys.offers import OfferRanker

    ds = Dataset(**validate_tables(synth[0])[0])
    as_of = ds.offers[C.START_DATE].max()
    customers = ds.customers[C.CUSTOMER_ID]
    churn = pd.Series(np.random.default_rng(3).uniform(size=len(customers)), index=customers.to_numpy())
    ranker = OfferRanker(als_params={"factors": 16, "iterations": 10}).fit(ds, as_of=as_of, churn=churn)
    current = ds.offers[ds.offers[C.START_DATE] == as_of]
    products = ds.transactions[C.PRODUCT_ID].value_counts().index[:5].tolist()
    retention = {
        C.OFFER_ID: "come-back",
        C.NAME: "come back",
        C.OFFER_TYPE: "amount_off",
        C.VALUE: 2.0,
        C.PRODUCT_IDS: products,
        C.START_DATE: as_of - pd.Timedelta(days=30),
        C.END_DATE: as_of + pd.Timedelta(days=30),
        C.MIN_CHURN_RISK: 0.6,
    }
    return ds, ranker, pd.concat([current, pd.DataFrame([retention])], ignore_index=True), as_of
