"""Kevin Hillstrom's MineThatData e-mail experiment (2008) as an experiment table.

64,000 customers randomised into three equal groups: Mens E-Mail, Womens E-Mail and No E-Mail;
outcomes in the two weeks after the e-mail: ``visit``, ``conversion``, ``spend``. Each e-mail is
a group of its own, with its customers as the treated arm and the No E-Mail customers as the
control arm (the same control customers serve both groups).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from recsys import constants as C
from recsys.errors import DataSourceError
from recsys.incrementality.lift import ARM, CONTROL, GROUP, TREATED

OUTCOMES = ("visit", "conversion", "spend")
COVARIATES = ("recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie", "channel")
EMAILS = ("Mens E-Mail", "Womens E-Mail")
NO_EMAIL = "No E-Mail"


def load_hillstrom(path: str | os.PathLike) -> pd.DataFrame:
    """The experiment table: ``customer_id`` (the row), ``group`` (the e-mail), ``arm``, the
    covariates and the outcomes. Refuses a file without the experiment's columns or arms."""
    path = Path(path)
    if not path.is_file():
        raise DataSourceError(f"{path}: no such file (the Hillstrom e-mail experiment's CSV)")
    raw = pd.read_csv(path)
    missing = [c for c in (*COVARIATES, *OUTCOMES, "segment") if c not in raw]
    if missing:
        raise DataSourceError(f"{path}: not the Hillstrom experiment (missing columns: {', '.join(missing)})")
    arms = set(raw["segment"])
    if not {*EMAILS, NO_EMAIL} <= arms:
        raise DataSourceError(f"{path}: segment must hold {', '.join((*EMAILS, NO_EMAIL))}; found {sorted(arms)}")
    raw = raw.reset_index().rename(columns={"index": C.CUSTOMER_ID})
    control = raw[raw["segment"] == NO_EMAIL]
    frames = []
    for email in EMAILS:
        frames.append(raw[raw["segment"] == email].assign(**{GROUP: email, ARM: TREATED}))
        frames.append(control.assign(**{GROUP: email, ARM: CONTROL}))
    out = pd.concat(frames, ignore_index=True)
    return out[[C.CUSTOMER_ID, GROUP, ARM, *COVARIATES, *OUTCOMES]]
