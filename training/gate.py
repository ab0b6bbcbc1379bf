"""The quality gate: a candidate is promoted to champion only when it beats its baselines and
does not fall below the champion (docs/training.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from recsys import constants as C
from registry.store import alias_version, client, set_champion, version_metrics

# Metric, and the baselines the model must beat on it (same run, same evaluation).
GATE = C.GATE_BASELINES


@dataclass
class GateResult:
    version: str
    champion: str | None
    passed: bool
    promoted: bool
    checks: list[dict] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "version": self.version,
            "champion": self.champion,
            "passed": self.passed,
            "promoted": self.promoted,
            "checks": self.checks,
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
        lines.append(
            f"  champion is now version {self.version}"
            if self.promoted
            else f"  champion unchanged ({self.champion or 'none'})"
        )
        return "\n".join(lines)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def quality_gate(name: str, version: str, *, tolerance: float = 0.01, promote: bool = True) -> GateResult:
    """Check ``version`` against its baselines and the champion; promote it when it passes."""
    c = client()
    metrics, params = version_metrics(c, name, version)
    champion = alias_version(name, C.CHAMPION)
    checks = []
    for metric, baselines in GATE.items():
        value = metrics.get(metric)
        if value is None:
            continue  # that part was not evaluated (e.g. a dataset without campaigns)
        for b in baselines:
            if b in metrics:
                checks.append(
                    {
                        "metric": metric,
                        "value": value,
                        "rule": ">",
                        "against": metrics[b],
                        "what": f"baseline {b}",
                        "ok": value > metrics[b],
                    }
                )
    note = ""
    if champion is not None and champion != version:
        old, old_params = version_metrics(c, name, champion)
        same = old_params.get("data_fingerprint") == params.get("data_fingerprint") and old_params.get(
            "as_of"
        ) == params.get("as_of")
        if same:
            for metric in GATE:
                if metric in metrics and metric in old:
                    checks.append(
                        {
                            "metric": metric,
                            "value": metrics[metric],
                            "rule": ">=",
                            "against": old[metric] - tolerance,
                            "what": f"champion v{champion} {old[metric]:.4f} - tolerance {tolerance}",
                            "ok": metrics[metric] >= old[metric] - tolerance,
                        }
                    )
        else:
            note = (
                f"champion v{champion} was evaluated on other data or another date "
                f"({old_params.get('data_fingerprint')} as of {old_params.get('as_of')}); "
                "only the baselines are compared"
            )
    if not checks:
        note = (note + "; " if note else "") + "no gate metric was evaluated"
    passed = bool(checks) and all(ch["ok"] for ch in checks)
    promoted = False
    if passed and promote:
        set_champion(c, name, version)
        promoted = True
    return GateResult(version, champion, passed, promoted, checks, note)
