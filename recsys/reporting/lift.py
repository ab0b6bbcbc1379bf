"""The lift report: every offer and campaign that held back a randomised control group, its
measured lift and incremental profit with intervals, and what cannot be measured.

Campaigns without ``held_out`` events (The Complete Journey's among them: its campaigns were
targeted, not randomised) are listed with the verdict that lift cannot be measured; no
observational estimate is made in their place.
"""

from __future__ import annotations

import pandas as pd

from recsys import constants as C
from recsys.data.dataset import Dataset
from recsys.incrementality import (
    DEFAULT_WINDOW_DAYS,
    GROUP,
    assignments,
    campaign_experiment,
    experiment_table,
    lift_table,
)
from recsys.incrementality.lift import DEFAULT_MARGIN
from recsys.reporting import plots
from recsys.reporting.reports import Report

NO_CONTROL = (
    "no control group: lift cannot be measured (the campaign's offers were sent without holding "
    "customers back at random)"
)


def lift_results(
    ds: Dataset,
    *,
    window_days: int = DEFAULT_WINDOW_DAYS,
    campaign=None,
    margin: float = DEFAULT_MARGIN,
    level: float = 0.95,
    last: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One row per offer and per campaign with a control group (``level`` column: offer or
    campaign), the lift table's columns; then one row per campaign without one. ``last``: the
    data's last moment when ``ds.transactions`` are only the experiments' customers'."""
    events = ds.offer_events
    a = assignments(events)
    if campaign is not None:
        a = a[a[C.CAMPAIGN_ID].astype(str) == str(campaign)]
    controlled = set(a.loc[a["arm"] == "control", C.OFFER_ID])
    rows = []
    if controlled:
        ev = events[events[C.OFFER_ID].isin(controlled)]
        if campaign is not None and C.CAMPAIGN_ID in ev:
            ev = ev[ev[C.CAMPAIGN_ID].astype(str) == str(campaign)]
        e = experiment_table(ds.transactions, ev, ds.offers, products=ds.products, window_days=window_days, last=last)
        if len(e):
            kw = {"margin": margin, "level": level}
            rows.append(lift_table(e, **kw).assign(level="offer"))
            camp = campaign_experiment(e)
            if len(camp):
                rows.append(lift_table(camp, **kw).assign(level="campaign"))
    plain = a[~a[C.OFFER_ID].isin(controlled)]
    if len(plain):
        key = plain[C.CAMPAIGN_ID].astype("string").fillna("(none)")
        counts = plain.groupby(key).size()
        rows.append(
            pd.DataFrame(
                {
                    GROUP: counts.index.astype(str),
                    "treated": counts.to_numpy(),
                    "control": 0,
                    "verdict": NO_CONTROL,
                    "level": "campaign",
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=["level", GROUP, "treated", "control", "verdict"])
    out = pd.concat(rows, ignore_index=True)
    return out[["level", *[c for c in out.columns if c != "level"]]]


def lift_report(
    ds: Dataset,
    *,
    window_days: int = DEFAULT_WINDOW_DAYS,
    campaign=None,
    margin: float = DEFAULT_MARGIN,
    last: pd.Timestamp | None = None,
) -> Report:
    """:func:`lift_results` as a report: ``lift.csv``, a figure of the intervals, and metrics."""
    table = lift_results(ds, window_days=window_days, campaign=campaign, margin=margin, last=last)
    measured = table[table["control"] > 0]
    note = (
        f"{len(measured)} offers and campaigns with a randomised control group"
        if len(measured)
        else "no randomised control group in the data: lift cannot be measured, and no observational "
        "estimate is given in its place"
    )
    metrics = {
        "window_days": window_days,
        "margin": margin,
        "groups_measured": int(len(measured)),
        "groups_without_control": int((table["control"] == 0).sum()),
        "note": note,
    }
    figures = {}
    if len(measured):
        figures["lift"] = plots.lift_intervals(
            measured.assign(group=measured["level"] + " " + measured[GROUP]),
            note=f" ({window_days}-day window, margin {margin:.0%})",
        )
    return Report(metrics=metrics, tables={"lift": table.set_index("level")}, figures=figures)
