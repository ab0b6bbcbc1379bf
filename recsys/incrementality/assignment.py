"""Control groups: which customers are kept back from an offer, reproducibly.

A customer who would get an offer (eligible, and in the top k) is held back as its control with
probability ``share`` (the catalog's ``control_share``, or the service-wide default). The draw
is a keyed hash of (salt, customer, offer) mapped to [0, 1): every gunicorn worker, every export
and every rerun gives the same answer, and a customer stays in the same arm for the life of the
offer. Changing the salt starts new experiments. An optional global control group (its own
share and salt) gets no offers at all, to measure the whole programme. docs/incrementality.md.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

_SCALE = float(2**64)
# The environment variables of the service and the exports (docs/incrementality.md), per field.
ENVIRONMENT = {
    "share": "RECSYS_CONTROL_SHARE",
    "salt": "RECSYS_ASSIGNMENT_SALT",
    "global_share": "RECSYS_GLOBAL_CONTROL_SHARE",
    "global_salt": "RECSYS_GLOBAL_CONTROL_SALT",
    "backfill": "RECSYS_CONTROL_BACKFILL",
}


def unit_draw(salt: str, *keys) -> float:
    """A number in [0, 1) from a keyed hash (BLAKE2b, keyed with ``salt``) of ``keys``."""
    h = _keyed(salt).copy()  # the keyed state once per salt: a copy costs less than keying again
    h.update("\x1f".join(map(str, keys)).encode())
    return int.from_bytes(h.digest(), "big") / _SCALE


@functools.lru_cache(maxsize=16)
def _keyed(salt: str, digest_size: int = 8):
    return hashlib.blake2b(key=salt.encode()[:64], digest_size=digest_size)


@dataclass(frozen=True)
class ControlGroups:
    """How customers are kept back as control. ``share``: the default share of each offer's
    customers held back (an offer's own ``control_share`` overrides it; 0 turns control groups
    off); ``global_share``: customers who get no offers at all; ``backfill``: a held-back offer's
    place goes to the next eligible offer (True) or stays empty (False)."""

    share: float = 0.1
    salt: str = "offers-v1"
    global_share: float = 0.0
    global_salt: str = "global-v1"
    backfill: bool = True

    def __post_init__(self):
        for name in ("share", "global_share"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"control groups: {name} must be in [0, 1), not {value!r}")
        for name in ("salt", "global_salt"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"control groups: {name} must be a non-empty text")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ControlGroups:
        """The settings in ``env`` (ENVIRONMENT names them), defaults for the rest; a bad value is
        refused naming its variable."""
        values: dict = {}
        for name, var in ENVIRONMENT.items():
            text = env.get(var)
            if text is None or text == "":
                continue
            try:
                if name == "backfill":
                    if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
                        raise ValueError(text)
                    values[name] = text.lower() in ("1", "true", "yes")
                else:
                    values[name] = float(text) if name.endswith("share") else text
            except ValueError:
                raise ValueError(f"{var}: {text!r} is not a {'flag' if name == 'backfill' else 'number'}") from None
        try:
            return cls(**values)
        except ValueError as exc:
            raise ValueError(f"{exc} (environment: {', '.join(ENVIRONMENT.values())})") from None

    @property
    def active(self) -> bool:
        return self.share > 0 or self.global_share > 0

    def in_global_control(self, customer_id) -> bool:
        """Whether the customer gets no offers at all."""
        return self.global_share > 0 and unit_draw(self.global_salt, customer_id) < self.global_share

    def offer_share(self, share: float) -> float:
        """The offer's control share: its own when set (not NaN), else the default."""
        return self.share if share is None or share != share else float(share)  # NaN != NaN

    def held_out(self, customer_id, offer_id, share: float = float("nan")) -> bool:
        """Whether the customer is kept back from the offer (outside the global control group)."""
        s = self.offer_share(share)
        return s > 0 and unit_draw(self.salt, customer_id, offer_id) < s

    def control_probability(self, share: float = float("nan")) -> float:
        """P(a customer who would get the offer is held back from it): by the global control
        group or by the offer's own draw. A sent event has propensity 1 minus this."""
        return self.global_share + (1 - self.global_share) * self.offer_share(share)

    def event_id(self, customer_id, offer_id) -> str:
        """The held_out event's id: derived from the assignment, so recording it again, from any
        worker or export, stores it once."""
        h = _keyed(f"{self.salt}\x1f{self.global_salt}", 16).copy()
        h.update("\x1f".join(map(str, (customer_id, offer_id))).encode())
        return "held-" + h.hexdigest()
