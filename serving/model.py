"""The loaded model and catalog: loaded at start and on reload, never per request.

``ModelHolder.current`` is one immutable ``Loaded`` object. A reload builds and warms a new one
beside it, then swaps the reference in one assignment: requests in flight keep the object they
started with.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recsys import constants as C
from recsys.bundle import ModelBundle
from recsys.data import load_offer_tables
from recsys.io import json_safe
from recsys.offers import PreparedOffers
from registry.loader import load_bundle
from serving.answers import AnswerCache, offer_json
from serving.fields import parse_int_id

logger = logging.getLogger(__name__)


class ModelNotReady(RuntimeError):
    """No model is loaded (yet)."""


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
    _by_day: dict  # day -> PreparedOffers of the offers valid that day (a few recent days kept)
    answers: AnswerCache  # answers given with this model and catalog (serving.answers)
    campaign_of: dict  # offer_id -> the catalog's campaign_id, for the events recorded of it
    quality_gate: str | None = None  # the registered version's gate result

    def prepared_on(self, day: pd.Timestamp) -> PreparedOffers:
        """The catalog's offers valid on ``day``, prepared once per day: a request only scores
        offers it could get."""
        day = pd.Timestamp(day).normalize()
        found = self._by_day.get(day)
        if found is None:
            c = self.catalog
            valid = c[(c[C.START_DATE] <= day) & (c[C.END_DATE] >= day)]
            found = self.bundle.ranker.prepare(valid)
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
    t = time.perf_counter()
    resolved = load_bundle(model_uri, tracking_uri)
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
    )
    # warm-up: the first request should not pay for lazy work
    if len(ids):
        today = pd.Timestamp.now().normalize()
        bundle.ranker.rank(ids[0], loaded.prepared_on(today), k=3, as_of=today)
        bundle.at_risk(min_risk=0.5)
    logger.info("loaded %s (version %s) in %.1f s", model_uri, version, time.perf_counter() - t)
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


class ModelHolder:
    """The loaded model of one process, and its reloads.

    With ``reload_file`` (gunicorn's workers share one), a reload announced by one worker is
    followed by the others: each watches the file's token and reloads when it changes.
    """

    def __init__(
        self,
        model_uri: str,
        tracking_uri: str,
        catalog_source: str | None,
        cache_entries: int = 0,
        reload_file: str | None = None,
        on_loaded: Callable[[Loaded], None] | None = None,
    ):
        self.model_uri = model_uri
        self.cache_entries = cache_entries
        self.tracking_uri = tracking_uri
        self.catalog_source = catalog_source
        self.reload_file = Path(reload_file) if reload_file else None
        self.on_loaded = on_loaded
        self._current: Loaded | None = None
        self._lock = threading.Lock()
        self._seen = self._token()
        self._watcher: threading.Thread | None = None
        self.last_error: str | None = None

    @property
    def current(self) -> Loaded:
        loaded = self._current
        if loaded is None:
            raise ModelNotReady(self.last_error or "the model is not loaded yet")
        return loaded

    @property
    def ready(self) -> bool:
        return self._current is not None

    def reload(self, announce: bool = False) -> Loaded:
        """Load the current model and catalog, warm up, then swap (one reload at a time). With
        ``announce``, tell the other workers to do the same."""
        with self._lock:
            token = self._token()
            try:
                fresh = load(self.model_uri, self.tracking_uri, self.catalog_source, self.cache_entries)
            except Exception as exc:
                self.last_error = f"loading {self.model_uri} failed: {exc}"
                raise
            self._current = fresh
            self.last_error = None
            self._seen = token
            if announce and self.reload_file:
                try:
                    self._seen = self._announce()
                except OSError as exc:  # this worker has the new model; the others keep theirs
                    logger.error("reloaded, but could not tell the other workers through %s: %s", self.reload_file, exc)
        if self.on_loaded is not None:
            self.on_loaded(fresh)
        return fresh

    def _token(self) -> str | None:
        try:
            return self.reload_file.read_text() if self.reload_file else None
        except FileNotFoundError:
            return None

    def _announce(self) -> str:
        token = f"{time.time_ns()}-{os.getpid()}"
        tmp = self.reload_file.with_name(f".{self.reload_file.name}.{os.getpid()}")
        tmp.write_text(token)
        os.replace(tmp, self.reload_file)  # the others read the whole token or the old one
        return token

    def check(self) -> bool:
        """Reload if another worker announced a reload since this one last loaded; True if it did."""
        token = self._token()
        if token == self._seen:
            return False
        try:
            self.reload()
        except Exception as exc:  # keep serving the model we have; /readyz stays ready
            self._seen = token  # one attempt per announcement
            logger.error("announced reload failed: %s", exc)
            return False
        return True

    def watch(self, every: float = 1.0) -> None:
        """Check for announced reloads every ``every`` seconds on a daemon thread."""
        if self.reload_file is None or self._watcher is not None:
            return

        def loop():
            while True:
                time.sleep(every)
                try:
                    self.check()
                except Exception:  # never let the watcher die
                    logger.exception("reload watcher")

        self._watcher = threading.Thread(target=loop, name="recsys-reload-watcher", daemon=True)
        self._watcher.start()
