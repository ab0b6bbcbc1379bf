"""Which offers may be sent to which customers: validity dates, channel, allowed segments,
churn-risk range, redemptions per customer, a frequency cap on recent sends and explicit
exclusions (docs/offers.md lists the rules)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys import constants as C
from recsys.offers.prepared import PreparedOffers


@dataclass(frozen=True)
class EventArrays:
    """Offer events as plain arrays: what an event store hands the ranker for a request."""

    customer_id: np.ndarray
    offer_id: np.ndarray
    event: np.ndarray  # "sent", "viewed", "redeemed"
    timestamp: np.ndarray  # datetime64[ns]

    @classmethod
    def from_frame(cls, events: pd.DataFrame) -> EventArrays:
        return cls(
            events[C.CUSTOMER_ID].to_numpy(dtype=object),
            events[C.OFFER_ID].to_numpy(dtype=object),
            events[C.EVENT].to_numpy(dtype=object),
            events[C.TIMESTAMP].to_numpy("datetime64[ns]"),
        )

    @classmethod
    def from_rows(cls, rows_by_customer: dict) -> EventArrays:
        """What ``EventStore.rows_by_customer`` returns: customer -> ``(offer_id, event, timestamp)`` rows."""
        cust = [c for c, rows in rows_by_customer.items() for _ in rows]
        flat = [row for rows in rows_by_customer.values() for row in rows]
        return cls(
            np.array(cust, dtype=object),
            np.array([r[0] for r in flat], dtype=object),
            np.array([r[1] for r in flat], dtype=object),
            np.array([r[2] for r in flat], dtype="datetime64[ns]"),
        )

    def __len__(self) -> int:
        return len(self.customer_id)


@dataclass(frozen=True)
class EligibilityRules:
    """Contact rules of the service: the frequency cap, and the risk from which retention offers lead."""

    frequency_cap: int = 3  # an offer is not sent more than this many times ...
    frequency_days: int = 30  # ... in the this many days before the decision
    # an offer the customer redeemed this many times is not offered again, unless the catalog's
    # max_redemptions_per_customer says otherwise (a single-use coupon, by default)
    default_max_redemptions: int = 1
    # an offer seen this many times in the window is not offered then: the customer saw it, and passed
    view_cap: int = 5
    at_risk_threshold: float = C.HIGH_RISK  # churn probability (the high band) from which retention offers come first


def eligibility(
    customer_ids: pd.Index,
    prepared: PreparedOffers,
    as_of: pd.Timestamp,
    channel: str | None,
    events: pd.DataFrame | EventArrays | None,
    exclude=(),
    *,
    risk_of: Callable[[pd.Index], np.ndarray],
    segment_of: Callable[[pd.Index], np.ndarray],
    rules: EligibilityRules | None = None,
    decided_at: pd.Timestamp | None = None,
) -> np.ndarray:
    """Boolean customers x offers matrix of what may be sent.

    ``as_of`` is the day offers must be valid on; ``decided_at`` the moment of the decision
    (default ``as_of``): the frequency cap counts the sends of the ``frequency_days`` before it
    and the redemption limits the redemptions up to it. The service decides now, whatever
    day it is asked about; a backtest decides on its day.

    ``risk_of`` and ``segment_of`` give the churn probability and the segment of customers;
    they are asked only when some offer has a risk range or allowed segments.
    """
    rules = rules or EligibilityRules()
    m = np.repeat(_offer_rules(prepared, as_of, channel, exclude)[None, :], len(customer_ids), axis=0)
    restricted = [j for j, lst in enumerate(prepared.segments) if lst is not None]
    if restricted:
        seg = segment_of(customer_ids)
        for j in restricted:
            m[:, j] &= np.isin(seg, prepared.segments[j])
    risk = None
    for bound, cmp in ((prepared.min_risk, np.greater_equal), (prepared.max_risk, np.less_equal)):
        has = ~np.isnan(bound)
        if has.any():
            risk = risk_of(customer_ids) if risk is None else risk
            with np.errstate(invalid="ignore"):
                m[:, has] &= cmp(risk[:, None], bound[None, has])  # an unknown risk fails any bound
    if events is not None and len(events):
        event_limits(m, customer_ids, prepared, as_of if decided_at is None else decided_at, events, rules)
    return m


def _offer_rules(prepared: PreparedOffers, as_of: pd.Timestamp, channel: str | None, exclude) -> np.ndarray:
    """Per offer, the rules that do not depend on the customer: dates, channel, exclusions."""
    day = np.datetime64(as_of.normalize(), "ns")
    ok = (prepared.start <= day) & (prepared.end >= day)
    if channel is not None:
        ok &= np.array([lst is None or channel in lst for lst in prepared.channels], dtype=bool)
    if len(exclude):
        ok &= ~prepared.index.isin(list(exclude))
    return ok


def event_limits(
    m: np.ndarray,
    customer_ids: pd.Index,
    prepared: PreparedOffers,
    as_of: pd.Timestamp,
    events: pd.DataFrame | EventArrays,
    rules: EligibilityRules,
) -> None:
    """Take out of ``m`` (customers x offers, in place) what the frequency cap, the view cap and
    the redemptions per customer forbid, from the events up to the decision time ``as_of``
    (hold-backs count for none of them)."""
    if isinstance(events, pd.DataFrame):
        events = EventArrays.from_frame(events)
    counted = (events.event == C.SENT) | (events.event == C.REDEEMED) | (events.event == C.VIEWED)
    if not counted.any():
        return
    who = events.customer_id
    if len(customer_ids) == 1:
        r = np.where(who == customer_ids[0], 0, -1)
    else:
        r = customer_ids.get_indexer(who)
    o = np.fromiter((prepared.position.get(x, -1) for x in events.offer_id.tolist()), dtype=np.intp, count=len(events))
    t = events.timestamp
    kind = events.event
    mine = (r >= 0) & (o >= 0) & (t <= np.datetime64(as_of, "ns"))
    since = np.datetime64(as_of - pd.Timedelta(days=rules.frequency_days), "ns")
    recent = mine & (kind == "sent") & (t > since)
    sends = np.zeros(m.shape, np.int64)
    np.add.at(sends, (r[recent], o[recent]), 1)
    m &= sends < rules.frequency_cap
    viewed = mine & (kind == C.VIEWED) & (t > since)
    if viewed.any():
        views = np.zeros(m.shape, np.int64)
        np.add.at(views, (r[viewed], o[viewed]), 1)
        m &= views < rules.view_cap
    red = mine & (kind == "redeemed")
    if red.any():
        limit = np.where(np.isnan(prepared.max_redemptions), rules.default_max_redemptions, prepared.max_redemptions)
        used = np.zeros(m.shape, np.int64)
        np.add.at(used, (r[red], o[red]), 1)
        m &= used < limit[None, :]
