"""What a training run is asked to do: data, date, seed, horizons and which stages to run."""

from __future__ import annotations

from dataclasses import dataclass, field

from recsys import constants as C

STAGES = ("load", "features", "segmentation", "churn", "cf", "offers", "evaluate", "package", "register")
ENGINES = ("local", "spark")
DEFAULT_ALS = {"factors": 64, "regularization": 0.5, "iterations": 15}


@dataclass
class TrainConfig:
    data: str
    as_of: str | None = None  # default: the day after the last transaction
    experiment: str = C.MODEL_NAME
    seed: int = C.SEED
    horizon_days: int = C.DEFAULT_HORIZON_DAYS
    snapshot_every_days: int = 14
    churn_snapshots: int = 18  # rolling-origin snapshots at most; the last one's label window ends by the data
    als: dict = field(default_factory=lambda: dict(DEFAULT_ALS))
    cf_test_days: int = 28
    eval_campaigns: tuple | None = None  # None: the two latest finished campaigns (held-out ones never)
    min_campaign_redeemers: int = 20
    min_campaign_offers: int = 20
    # Campaigns held back for independent evaluation: their events are dropped before anything is
    # fitted and they are never evaluated on. None: The Complete Journey's campaign 18 on that
    # dataset (recognised by its importer's marker), none on any other; () for none at all.
    held_out_campaigns: tuple | None = None
    # The service's events store, read with the dataset's offer_events (None: the dataset's alone).
    events_url: str | None = None
    lift_window_days: int = 14
    # Where the purchase history is reduced: "local" (this process) or "spark" (a Spark cluster,
    # RECSYS_SPARK_MASTER; the tables go to `aggregates`, default a temporary directory).
    engine: str = "local"
    aggregates: str | None = None
    # past sent offers the redemption model learns from, beyond which the unredeemed are sampled
    # and weighted (None: all; recsys.offers.redemption)
    max_examples: int | None = C.MAX_REDEMPTION_EXAMPLES
    model_name: str = C.MODEL_NAME
    until: str | None = None
    register: bool = True
    promote: bool = True  # False: register and gate, never move the champion
    force_promote: bool = False  # promote even when the gate fails (recorded as quality_gate=forced)
    tolerance: float = 0.01
    baseline_tolerance: float = C.GATE_BASELINE_TOLERANCE

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")

    def stages(self) -> list[str]:
        """The stages this run goes through, in order."""
        if self.until is not None and self.until not in STAGES:
            raise ValueError(f"unknown stage {self.until!r}; stages: {', '.join(STAGES)}")
        stages = list(STAGES[: STAGES.index(self.until) + 1]) if self.until else list(STAGES)
        if not self.register and "register" in stages:
            stages.remove("register")
        return stages
