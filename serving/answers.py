"""Ranked offers per customer as JSON, with a cache of answers already given.

An answer is a pure function of the loaded model and catalog, the customer, the day, the
channel, k and the customer's offer events. Each loaded model keeps its own cache (a reload
starts an empty one), keyed by everything else; the events enter the key as a digest of the
customer's rows as the events database holds them when the request comes (serving.events).
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
from serving.events import event_arrays


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


def _dumps(obj) -> bytes:
    # allow_nan=False: a NaN would be invalid JSON; it must never reach a client silently
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def answers(loaded, rows_by_customer: dict, customer_ids: list, k: int, channel: str | None,
            day: pd.Timestamp) -> tuple[list[bytes], int]:
    """One JSON object per customer id (in the model's id type), in order:
    ``{"customer_id", "cold_start", "model_version", "offers": [...]}``; and how many came
    from the cache.

    ``rows_by_customer`` maps a customer id to its event rows ``(offer_id, event, timestamp)``.
    """
    cache = loaded.answers
    keys = [(c, day, channel, k, hash(rows_by_customer.get(c, ()))) for c in customer_ids]
    out: list[bytes | None] = [cache.get(key) for key in keys]
    missing = [i for i, f in enumerate(out) if f is None]
    if missing:
        todo = list(dict.fromkeys(customer_ids[i] for i in missing))
        fresh = _rank(loaded, todo, rows_by_customer, k, channel, day)
        for i in missing:
            out[i] = fresh[customer_ids[i]]
            cache.put(keys[i], out[i])
    return out, len(customer_ids) - len(missing)


def _rank(loaded, ids: list, rows_by_customer: dict, k: int, channel: str | None, day) -> dict:
    events = event_arrays({c: rows_by_customer[c] for c in ids if c in rows_by_customer})
    ranker = loaded.bundle.ranker
    a = ranker._rank_arrays(ids, loaded.prepared_on(day), k=k, channel=channel, as_of=day, events=events)
    known = ranker.snapshot_.customer_map
    version = loaded.version
    offers: dict = {c: [] for c in ids}
    records = loaded.offer_records
    for cid, rank, oid, score, p, ev, reason in zip(a[C.CUSTOMER_ID].tolist(), a["rank"].tolist(),
                                                    a[C.OFFER_ID].tolist(), a["score"].tolist(),
                                                    a["p_redeem"].tolist(), a["expected_value"].tolist(),
                                                    a["reason"].tolist()):
        offers[cid].append({"rank": rank, "offer_id": oid, **records[oid], "score": _sig(score),
                            "p_redeem": _sig(p), "expected_value": _sig(ev), "reason": reason})
    return {c: _dumps({"customer_id": _plain(c), "cold_start": known.position(c) is None,
                       "model_version": version, "offers": offers[c]}) for c in ids}


def _sig(x: float) -> float:
    """Six significant digits: all the precision a score or probability carries."""
    return float(f"{x:.6g}")


def _plain(v):
    return int(v) if isinstance(v, np.integer) else v
