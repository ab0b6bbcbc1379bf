"""Ranked offers per customer as JSON, with a cache of answers already given.

An answer is a pure function of the loaded model and catalog, the customer, the day, the
channel, k and the customer's offer events. Each loaded model keeps its own cache (a reload
starts an empty one), keyed by everything else; the events enter the key as a digest of the
customer's rows as the events database holds them when the request comes (recsys.data.event_store).
An event posted to any worker changes the digest, so frequency caps and redemption limits
apply at once.

Answers are kept as JSON fragments: the single endpoint sends one as its body, the batch
endpoint joins a thousand of them without encoding anything twice.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.io import json_safe
from recsys.offers import EventArrays


class AnswerCache:
    """A bounded least-recently-used map of answer keys to JSON fragments (thread-safe)."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key) -> bytes | None:
        if self.max_entries <= 0:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key, fragment: bytes) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._entries[key] = fragment
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class HeldOutRecorder:
    """Stores held_out events in the events store, each once per process: an assignment seen
    again (the same customer asking again) costs no write. The store keeps each once whatever
    the process (the event id is derived from the assignment).

    A request returns once its events are committed. The requests of a process commit together
    (group commit): while one thread writes, the others' events gather, and the next writer
    stores them all in one transaction; a request whose events another thread committed
    returns at once. A send's many concurrent requests so cost a few transactions, not one each.

    With the store unreachable the answer is still given (the offers stay held back) and the
    events wait in memory (at most ``MAX_PENDING``) to be written with the next ones; requests
    that waited behind the failed write do not try again (``health``, a
    serving.dependencies.Dependency, says the store failed)."""

    MAX_REMEMBERED = 1_000_000
    MAX_PENDING = 100_000

    def __init__(self, store, health):
        self.store = store
        self.health = health
        self._seen: set = set()
        self._pending: list[dict] = []
        self._lock = threading.Lock()  # guards _pending, _seen and _failures
        self._writing = threading.Lock()  # one writer at a time in this process
        self._failures = 0

    def __call__(self, held: dict, control, campaign_of: dict) -> None:
        """Record the held-back (customer, offer) pairs of a decision (``ranker.decide``'s second
        result) not recorded by this process yet."""
        ids = [control.event_id(c, o) for c, o in zip(held[C.CUSTOMER_ID].tolist(), held[C.OFFER_ID].tolist())]
        fresh = [i for i, e in enumerate(ids) if e not in self._seen]
        if not fresh and not self._pending:
            return
        new = held_events({k: v[fresh] for k, v in held.items()}, control, campaign_of, [ids[i] for i in fresh])
        with self._lock:
            self._pending += new
            failures = self._failures
        with self._writing:
            with self._lock:
                if self._failures != failures:  # the store failed while this request waited
                    return
                batch, self._pending = self._pending, []
            if batch:
                self._write(batch)

    def _write(self, batch: list[dict]) -> None:
        try:
            self.store.record(batch)  # the first worker to record an assignment wins
        except Exception as exc:
            self.health.failed(exc)
            with self._lock:
                self._pending = (batch + self._pending)[-self.MAX_PENDING :]
                self._failures += 1
            return
        self.health.succeeded()
        with self._lock:
            if len(self._seen) > self.MAX_REMEMBERED:
                self._seen = set()
            self._seen.update(e[C.EVENT_ID] for e in batch)

    @property
    def pending(self) -> int:
        return len(self._pending)


def _dumps(obj) -> bytes:
    # allow_nan=False: a NaN would be invalid JSON; it must never reach a client silently
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def answers(
    loaded,
    rows_by_customer: dict,
    customer_ids: list,
    k: int,
    channel: str | None,
    day: pd.Timestamp,
    control=None,
    record=None,
) -> tuple[list[bytes], int]:
    """One JSON object per customer id (in the model's id type), in order:
    ``{"customer_id", "cold_start", "model_version", "offers": [...], "held_out": [...]}``; and
    how many came from the cache.

    ``rows_by_customer`` maps a customer id to its event rows ``(offer_id, event, timestamp)``.
    ``control`` (ControlGroups) holds customers back from offers; ``record(held, control,
    campaign_of)`` is given the offers held back in the answers ranked here, before any of them
    is cached or returned.
    """
    cache = loaded.answers
    # decided now (the frequency cap's window ends now): an answer is good for the day it is given
    now = pd.Timestamp.now("UTC").tz_localize(None)
    if cache.max_entries > 0:
        today = now.normalize()
        keys = [(c, day, channel, k, hash(rows_by_customer.get(c, ())), today) for c in customer_ids]
        out: list[bytes | None] = [cache.get(key) for key in keys]
    else:  # no answer cache: no keys to make
        keys, out = [None] * len(customer_ids), [None] * len(customer_ids)
    missing = [i for i, f in enumerate(out) if f is None]
    if missing:
        todo = list(dict.fromkeys(customer_ids[i] for i in missing))
        fresh, held = _rank(loaded, todo, rows_by_customer, k, channel, day, control, now)
        if len(held[C.OFFER_ID]) and record is not None:
            record(held, control, loaded.campaign_of)
        for i in missing:
            out[i] = fresh[customer_ids[i]]
            cache.put(keys[i], out[i])
    return out, len(customer_ids) - len(missing)


def _rank(
    loaded, ids: list, rows_by_customer: dict, k: int, channel: str | None, day, control, now=None
) -> tuple[dict, dict]:
    mine = {c: rows_by_customer[c] for c in ids if c in rows_by_customer}
    events = EventArrays.from_rows(mine) if mine else None
    ranker = loaded.bundle.ranker
    a, held = ranker.decide(
        ids,
        loaded.prepared_on(day),
        k=k,
        channel=channel,
        as_of=day,
        events=events,
        control=control,
        decided_at=now,
    )
    known = ranker.snapshot_.customer_map
    offers: dict = {c: [] for c in ids}
    fields = loaded.offer_json
    reasons = _reason_json(a["reason"])
    for cid, rank, oid, tier, score, p, ev, reason, code in zip(
        a[C.CUSTOMER_ID].tolist(),
        a["rank"].tolist(),
        a[C.OFFER_ID].tolist(),
        a["tier"].tolist(),
        sig6(a["score"]),
        sig6(a["p_redeem"]),
        sig6(a["expected_value"]),
        a["reason"].tolist(),
        a["reason_code"].tolist(),
    ):
        # the fields in the documented order (schemas.Offer); every part is JSON already
        offers[cid].append(
            f'{{"rank":{rank},{fields[oid]},"tier":{tier},"score":{score!r},"p_redeem":{p!r},'
            f'"expected_value":{ev!r},"reason":{reasons[reason]},"reason_code":"{code}"}}'
        )
    kept: dict = {c: [] for c in ids}
    for cid, oid in zip(held[C.CUSTOMER_ID].tolist(), held[C.OFFER_ID].tolist()):
        kept[cid].append(_dumps(json_safe(oid)).decode())
    cold = (known.positions(ids) < 0).tolist()
    tail = ',"model_version":' + _dumps(loaded.version).decode() + ',"offers":['
    body = {
        c: (
            f'{{"customer_id":{_id_json(c)},"cold_start":{"true" if new else "false"}{tail}'
            f'{",".join(offers[c])}],"held_out":[{",".join(kept[c])}]}}'
        ).encode()
        for c, new in zip(ids, cold)
    }
    return body, held


_REASON_JSON: dict = {}


def _reason_json(reasons: np.ndarray) -> dict:
    """Each reason's JSON text (a handful of texts, encoded once)."""
    for r in reasons.tolist():
        if r not in _REASON_JSON:
            _REASON_JSON[r] = _dumps(r).decode()
    return _REASON_JSON


def held_events(held: dict, control, campaign_of: dict, event_ids: list | None = None) -> list[dict]:
    """The held_out events of a decision: one per (customer, offer), its id derived from the
    assignment (so every worker and every repeat records it once), dated now."""
    now = pd.Timestamp.now("UTC").tz_localize(None).floor("s")
    customers, offers = held[C.CUSTOMER_ID].tolist(), held[C.OFFER_ID].tolist()
    if event_ids is None:
        event_ids = [control.event_id(c, o) for c, o in zip(customers, offers)]
    return [
        {
            C.EVENT_ID: e,
            C.CUSTOMER_ID: c,
            C.OFFER_ID: o,
            C.EVENT: C.HELD_OUT,
            C.TIMESTAMP: now,
            C.CAMPAIGN_ID: campaign_of.get(o),
            C.PROPENSITY: float(p),
        }
        for e, c, o, p in zip(event_ids, customers, offers, held[C.PROPENSITY].tolist())
    ]


def _id_json(c) -> str:
    return str(int(c)) if isinstance(c, (int, np.integer)) and not isinstance(c, bool) else _dumps(c).decode()


def offer_json(records: dict) -> dict:
    """Per offer id: its ``offer_id`` and catalog fields as JSON object members (no braces),
    encoded once per loaded catalog."""
    return {oid: _dumps({"offer_id": json_safe(oid), **fields}).decode()[1:-1] for oid, fields in records.items()}


def sig6(x: np.ndarray) -> list[float]:
    """Each value rounded to six significant digits (all the precision a score or probability
    carries), as Python floats: the nearest double to the rounded decimal, so each prints short.

    Rounds all values at once; values whose scale has no exact power of ten (below 1e-16 or
    from 1e22) are formatted one by one. A NaN or infinity is an error: JSON has no such number.
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("Out of range float values are not JSON compliant")
    if len(x) <= 16:  # one customer's few offers: formatting each beats a dozen array operations
        return [float(f"{v:.6g}") for v in x.tolist()]
    mag = np.abs(x)
    with np.errstate(divide="ignore"):
        digits = 5 - np.floor(np.log10(np.where(mag > 0, mag, 1.0))).astype(np.int64)
    up = np.clip(digits, 0, 22)
    down = np.clip(-digits, 0, 22)
    out = np.where(digits >= 0, np.round(x * 10.0**up) / 10.0**up, np.round(x / 10.0**down) * 10.0**down)
    odd = (digits > 22) | (digits < -22)
    if odd.any():
        out[odd] = [float(f"{v:.6g}") for v in x[odd].tolist()]
    return out.tolist()
