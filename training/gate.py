"""The quality gate: a candidate is promoted to champion only when its evaluation ran, it beats
its baselines, and it is not worse than the champion scored on the candidate's own evaluation
(docs/training.md).

Like with like: a champion of another horizon or hold-out is another model line and is not
compared; the gate refuses by name. The champion's backtest churn model (fitted only on labels
before its own evaluation snapshot) is scored on the candidate's evaluation snapshot (same
customers, same labels) beside the candidate's backtest model, and the paired bootstrap
difference is gated: the candidate may not fall below the champion by more than ``tolerance``.
The served models are not compared: each has learnt from its own evaluation labels. Metrics
that cannot be re-scored (the offer and collaborative-filtering backtests refit their models)
are compared with the champion's only when both ran on the same data and date.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from recsys import constants as C
from recsys.evaluation import PSI_WARN, bootstrap_differences, drift_table
from registry.store import alias_version, client, set_champion, version_metrics

logger = logging.getLogger(__name__)

GATE = C.GATE_BASELINES
RESCORED = {"roc_auc": "churn_model_roc_auc", "average_precision": "churn_model_average_precision"}


@dataclass
class GateResult:
    version: str
    champion: str | None
    passed: bool
    promoted: bool
    checks: list[dict] = field(default_factory=list)
    note: str = ""
    forced: bool = False  # promoted although it failed, by request (recorded)
    champion_metrics: dict = field(default_factory=dict)  # the champion re-scored on this evaluation
    drift: pd.DataFrame | None = None  # per feature and score: PSI and KS against the champion's training data

    @property
    def status(self) -> str:
        return "passed" if self.passed else ("forced" if self.forced else "failed")

    def as_dict(self) -> dict:
        return {
            "version": self.version,
            "champion": self.champion,
            "passed": self.passed,
            "promoted": self.promoted,
            "forced": self.forced,
            "status": self.status,
            "checks": self.checks,
            "champion_metrics": self.champion_metrics,
            "drift": [] if self.drift is None else self.drift.to_dict("records"),
            "note": self.note,
        }

    def report(self) -> str:
        lines = [
            f"quality gate for version {self.version} "
            f"(champion: {self.champion or 'none'}): {'PASSED' if self.passed else 'FAILED'}"
        ]
        for c in self.checks:
            mark = "ok  " if c["ok"] else "FAIL"
            lines.append(f"  {mark} {c['metric']} = {_fmt(c['value'])} {c['rule']} {_fmt(c['against'])} ({c['what']})")
        if self.note:
            lines.append(f"  note: {self.note}")
        if self.forced:
            lines.append("  promoted by --force-promote although the gate failed (recorded as quality_gate=forced)")
        lines.append(
            f"  champion is now version {self.version}"
            if self.promoted
            else f"  champion unchanged ({self.champion or 'none'})"
        )
        return "\n".join(lines)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _check(metric, value, rule, against, what, ok) -> dict:
    return {"metric": metric, "value": value, "rule": rule, "against": against, "what": what, "ok": bool(ok)}


def quality_gate(
    name: str,
    version: str,
    *,
    tolerance: float = 0.01,
    baseline_tolerance: float = C.GATE_BASELINE_TOLERANCE,
    promote: bool = True,
    force: bool = False,
    evaluation: pd.DataFrame | None = None,
    evaluation_at: pd.Timestamp | None = None,
    profile: pd.DataFrame | None = None,
) -> GateResult:
    """Check ``version`` against its baselines and the champion; promote it when it passes (or,
    with ``force``, although it failed).

    ``tolerance``: how far below the champion a metric may fall; ``baseline_tolerance``: how far
    below a peer baseline (``constants.GATE_PEER_BASELINES``).
    ``profile``: a sample of the candidate's training features and scores, whose drift from the
    champion's is measured (a warning past evaluation.PSI_WARN, never a failure).
    ``evaluation``: the candidate's churn evaluation snapshot (features, ``churned`` and the
    candidate's ``model`` score per customer), on which the champion is re-scored.
    """
    c = client()
    metrics, params = version_metrics(c, name, version)
    champion = alias_version(name, C.CHAMPION)
    checks = _baseline_checks(metrics, baseline_tolerance)
    notes: list[str] = []
    champion_metrics: dict = {}
    drift = None
    if champion is not None and champion != version:
        bundle = _champion_bundle(name, champion, notes)
        champion_metrics = _champion_checks(
            c, name, champion, bundle, metrics, params, (evaluation, evaluation_at), tolerance, checks, notes
        )
        drift = _drift(bundle, profile, champion, notes)
    passed = bool(checks) and all(ch["ok"] for ch in checks)
    forced = force and not passed
    promoted = False
    if promote and (passed or forced):
        set_champion(c, name, version)
        promoted = True
    return GateResult(version, champion, passed, promoted, checks, "; ".join(notes), forced, champion_metrics, drift)


def _champion_bundle(name: str, champion: str, notes: list):
    from registry.loader import load_bundle

    try:
        return load_bundle(f"models:/{name}/{champion}").bundle
    except Exception as exc:  # an older bundle format: compared with the baselines only
        logger.warning("champion v%s could not be loaded: %s", champion, exc)
        notes.append(f"champion v{champion} could not be loaded ({exc})")
        return None


def _drift(bundle, profile: pd.DataFrame | None, champion: str, notes: list) -> pd.DataFrame | None:
    """The candidate's features and scores against the champion's training data (warnings only)."""
    reference = None if bundle is None else bundle.profile
    if reference is None or profile is None:
        return None
    table = drift_table(reference, profile)
    shifted = table[table["shifted"]]
    if len(shifted):
        shown = ", ".join(f"{r.feature} {r.psi:.2f}" for r in shifted.head(5).itertuples())
        notes.append(
            f"warning: {len(shifted)} feature(s) shifted from champion v{champion}'s training data "
            f"(PSI > {PSI_WARN}: {shown}); look before relying on the comparison"
        )
    return table


def _baseline_checks(metrics: dict, baseline_tolerance: float) -> list[dict]:
    """Each gate metric evaluated, above its naive baselines, not below its peers beyond the tolerance."""
    checks = []
    for metric, baselines in GATE.items():
        value = metrics.get(metric)
        if value is None:
            checks.append(_check(metric, None, "evaluated", None, "its evaluation could not run (see the run)", False))
            continue
        for b in baselines:
            if b not in metrics:
                continue
            if b in C.GATE_PEER_BASELINES:  # a model that could be shipped instead: not worse beyond the tolerance
                floor = metrics[b] - baseline_tolerance
                what = f"baseline {b} {metrics[b]:.4f} - tolerance {baseline_tolerance}"
                checks.append(_check(metric, value, ">=", floor, what, value >= floor))
            else:  # naive: beaten outright
                checks.append(_check(metric, value, ">", metrics[b], f"baseline {b}", value > metrics[b]))
    return checks


def _champion_checks(c, name, champion, bundle, metrics, params, evaluation, tolerance, checks, notes) -> dict:
    # ``evaluation``: the candidate's (evaluation set, evaluation snapshot)
    """Like with like, then the champion re-scored (and, on the same data, its metrics); appends
    to ``checks`` and ``notes``, returns the champion's re-scored metrics."""
    old, old_params = version_metrics(c, name, champion)
    differs = [k for k in C.GATE_LIKE_WITH_LIKE if str(params.get(k)) != str(old_params.get(k))]
    for key in differs:
        checks.append(
            _check(
                key,
                None,
                "==",
                None,
                f"{key} {params.get(key)} differs from champion v{champion}'s {old_params.get(key)}: another "
                "model line; train it under another --model-name, or promote it by hand",
                False,
            )
        )
    if differs:
        return {}
    same_data = (old_params.get("data_fingerprint"), old_params.get("as_of")) == (
        params.get("data_fingerprint"),
        params.get("as_of"),
    )
    rescored = _rescore_champion(bundle, champion, *evaluation, tolerance, checks, notes)
    for metric in GATE:
        if metric in rescored or not (same_data and metric in metrics and metric in old):
            continue
        checks.append(
            _check(
                metric,
                metrics[metric],
                ">=",
                old[metric] - tolerance,
                f"champion v{champion} on the same data {old[metric]:.4f} - tolerance {tolerance}",
                metrics[metric] >= old[metric] - tolerance,
            )
        )
    if not same_data:
        notes.append(
            f"champion v{champion} was trained on other data or another date; offer and CF metrics are "
            "compared with the baselines only"
        )
    return rescored


def _rescore_champion(
    bundle, champion: str, evaluation: pd.DataFrame | None, at, tolerance: float, checks: list, notes: list
) -> dict:
    """The champion's backtest churn model on the candidate's evaluation snapshot, beside the
    candidate's own backtest model: both fitted only on labels before their own evaluation
    snapshots, so neither has seen the labels they are scored on. Appends the paired checks."""
    if evaluation is None or evaluation.empty:
        notes.append("no churn evaluation to re-score the champion on")
        return {}
    if bundle is None:
        return {}
    model = getattr(bundle, "churn_backtest", None)
    champion_at = bundle.config.get("churn_eval_at")
    if model is None or champion_at is None:
        notes.append(f"champion v{champion} keeps no backtest churn model: not re-scored")
        return {}
    if at is not None and pd.Timestamp(champion_at) > pd.Timestamp(at):
        notes.append(
            f"champion v{champion} was evaluated later ({champion_at}) than this candidate ({at:%Y-%m-%d}): "
            "its backtest saw this evaluation's labels; not re-scored"
        )
        return {}
    try:
        champion_score = model.predict_proba(evaluation)[:, 1]
    except Exception as exc:  # an older bundle format or other features: say so, compare with baselines only
        logger.warning("champion v%s could not be scored on this evaluation: %s", champion, exc)
        notes.append(f"champion v{champion} could not be scored on this evaluation ({exc})")
        return {}
    y = evaluation["churned"].to_numpy()
    diffs = bootstrap_differences(y, {"model": evaluation["model"].to_numpy(), "champion": champion_score})
    out = {}
    scorers = {"roc_auc": roc_auc_score, "average_precision": average_precision_score}
    for row in diffs.itertuples(index=False):
        metric = RESCORED[row.metric]
        candidate = float(scorers[row.metric](y, evaluation["model"].to_numpy()))
        champ = float(scorers[row.metric](y, champion_score))
        out[metric] = champ
        checks.append(
            _check(
                metric,
                candidate,
                ">=",
                champ - tolerance,
                f"champion v{champion} re-scored on this evaluation ({len(y)} customers): {champ:.4f}; "
                f"difference {row.difference:+.4f} [{row.low:+.4f}, {row.high:+.4f}], tolerance {tolerance}",
                candidate >= champ - tolerance,
            )
        )
    return out
