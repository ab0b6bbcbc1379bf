"""Incrementality: randomised control groups for every offer, the experiment table they give,
and the lift of each offer and campaign with its uncertainty (docs/incrementality.md)."""

from recsys.incrementality.assignment import ENVIRONMENT, ControlGroups, unit_draw
from recsys.incrementality.experiment import (
    DEFAULT_WINDOW_DAYS,
    assignments,
    campaign_experiment,
    experiment_table,
    has_control_groups,
)
from recsys.incrementality.hillstrom import load_hillstrom
from recsys.incrementality.lift import (
    ARM,
    CONTROL,
    GROUP,
    OUTCOMES,
    TREATED,
    lift_table,
    relative_interval,
    verdict,
    welch_interval,
)

__all__ = [
    "ARM",
    "CONTROL",
    "DEFAULT_WINDOW_DAYS",
    "ENVIRONMENT",
    "GROUP",
    "OUTCOMES",
    "TREATED",
    "ControlGroups",
    "assignments",
    "campaign_experiment",
    "experiment_table",
    "has_control_groups",
    "lift_table",
    "load_hillstrom",
    "relative_interval",
    "unit_draw",
    "verdict",
    "welch_interval",
]
