"""A loaded model and catalog (``Loaded``): loaded at start and on reload, never per request
(serving.holder swaps them)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pandas as pd

from recsys import constants as C
from recsys.bundle import ModelBundle
from recsys.data import load_offer_tables
from recsys.io import json_safe
from recsys.offers import PreparedOffers, no_valid_offer
from registry.loader import load_bundle
from serving.answers import AnswerCache, offer_json
from serving.fields import parse_int_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    bundle: ModelBundle
    catalog: pd.DataFrame
    name: str
    version: str | None
    alias: str | None
    model_uri: str
    loaded_at: float
    id_is_int: bool
    offer_json: dict  # offer_id -> its id and fields as JSON members (serving.answers.offer_json)
    _by_day: dict  # day -> (PreparedOffers of the offers valid that day, notice); a few recent days kept
    answers: AnswerCache  # answers given with this model and catalog (serving.answers)
    campaign_of: dict  # offer_id -> the catalog's campaign_id, for the events recorded of it
    quality_gate: str | None = None  # the registered version's gate result
    source: str = "registry"  # registry, directory, or local copy (the registry being unreachable)
    pinned_uri: str | None = None  # models:/NAME/VERSION of this very version (None for a directory)
    path: object = None  # the bundle directory it was read from

    def prepared_on(self, day: pd.Timestamp) -> PreparedOffers:
        """The catalog's offers valid on ``day``, prepared once per day (with the customers'
        scores kept as they are computed): a request only scores offers it could get."""
        return self._on(day)[0]

    def no_offer_notice(self, day: pd.Timestamp) -> str | None:
        """Why no offer can be given on ``day`` (recsys.offers.no_valid_offer), None when some can."""
        return self._on(day)[1]

    def _on(self, day: pd.Timestamp) -> tuple[PreparedOffers, str | None]:
        found = self._by_day.get(day)  # a midnight, as the service asks: found without normalizing
        if found is not None:
            return found
        day = pd.Timestamp(day).normalize()
        found = self._by_day.get(day)
        if found is None:
            c = self.catalog
            valid = c[(c[C.START_DATE] <= day) & (c[C.END_DATE] >= day)]
            prepared = self.bundle.ranker.prepare(valid, keep_scores=True)
            found = (prepared, None if len(prepared.offer_ids) else no_valid_offer(c, day))
            if len(self._by_day) >= 16:
                self._by_day.pop(next(iter(self._by_day)))
            self._by_day[day] = found
        return found

    def parse_customer_id(self, value):
        """A customer id from a URL (text) or JSON (integer or text, serving.fields), in the
        model's id type. Only the canonical form names a known customer: "1_364", "١٣٦٤" or
        " 1364" are other ids, unknown to the model (cold start), never customer 1364."""
        if self.id_is_int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            found = parse_int_id(value) if isinstance(value, str) else None
            return value if found is None else found
        return str(value)


OFFER_FIELDS = (C.NAME, C.OFFER_TYPE, C.VALUE, C.CATEGORY, C.START_DATE, C.END_DATE, C.CHANNELS)


def offer_records(catalog: pd.DataFrame) -> dict:
    cols = [c for c in OFFER_FIELDS if c in catalog]
    values = catalog[cols].to_numpy(dtype=object)
    return {oid: {c: json_safe(v) for c, v in zip(cols, row)} for oid, row in zip(catalog[C.OFFER_ID].tolist(), values)}


def load(model_uri: str, tracking_uri: str, catalog_source: str | None, cache_entries: int = 0) -> Loaded:
    """The model at ``model_uri`` (registry URI or bundle directory), loaded and warmed up."""
    resolved = load_bundle(model_uri, tracking_uri)
    return prepare(
        resolved, model_uri, catalog_source, cache_entries, "directory" if resolved.version is None else "registry"
    )


def prepare(resolved, model_uri: str, catalog_source: str | None, cache_entries: int, source: str) -> Loaded:
    """A resolved model (registry.loader.ResolvedModel) with its catalog, ready to answer."""
    t = time.perf_counter()
    bundle, name, version, alias = resolved.bundle, resolved.name, resolved.version, resolved.alias
    catalog = read_catalog(catalog_source) if catalog_source else bundle.catalog
    ids = bundle.customers.index
    catalog = catalog.reset_index(drop=True)
    loaded = Loaded(
        bundle,
        catalog,
        name,
        version,
        alias,
        model_uri,
        time.time(),
        bool(len(ids)) and pd.api.types.is_integer_dtype(ids.dtype),
        offer_json(offer_records(catalog)),
        {},
        AnswerCache(cache_entries),
        _campaigns(catalog),
        resolved.quality_gate,
        source,
        resolved.pinned_uri,
        resolved.path,
    )
    # warm-up: the first request should not pay for lazy work
    if len(ids):
        today = pd.Timestamp.now().normalize()
        bundle.ranker.rank(ids[0], loaded.prepared_on(today), k=3, as_of=today)
        bundle.at_risk(min_risk=0.5)
    logger.info("loaded %s (version %s, from %s) in %.1f s", model_uri, version, source, time.perf_counter() - t)
    return loaded


def _campaigns(catalog: pd.DataFrame) -> dict:
    if C.CAMPAIGN_ID not in catalog:
        return {}
    known = catalog[catalog[C.CAMPAIGN_ID].notna()]
    return dict(zip(known[C.OFFER_ID].tolist(), (json_safe(v) for v in known[C.CAMPAIGN_ID].tolist())))


def read_catalog(source: str) -> pd.DataFrame:
    """The offers table of a directory or database, validated on its own."""
    frames = load_offer_tables(source, tables=(C.OFFERS,))
    if C.OFFERS not in frames:
        raise ValueError(f"catalog source {source} has no offers table")
    return frames[C.OFFERS]
