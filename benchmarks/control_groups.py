"""Control groups held back by the service and by the exports: the measured share on 10,000
customers against the configured one, the same answers on repeats, and the events store holding
every held-back offer exactly once after concurrent requests.

The service is the app on the given model (its test client, 8 threads, every batch asked twice);
the export is `export_decisions` over the model's customers with the same settings.

    python benchmarks/control_groups.py [--model models:/loyalty-offers@champion] [--share 0.1] [--as-of 2018-01-01]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from inference.exports import export_decisions
from recsys import constants as C
from recsys.data.store_events import read_event_store
from recsys.incrementality import ControlGroups


def service(model: str, control: ControlGroups, as_of: str, tmp: Path) -> None:
    # this folder's serving.py (the serving benchmark) must not stand for the serving package
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != here]
    from serving import create_app
    from serving.auth import KeyStore

    key = KeyStore(tmp / "keys.json").create("read")
    app = create_app(
        {
            "model_uri": model,
            "api_keys_file": str(tmp / "keys.json"),
            "control": control,
            "events_url": f"sqlite:///{tmp / 'events.db'}",
            "answer_cache": 0,
        }
    )
    ids = [f"new-{i:05d}" for i in range(10_000)]
    batches = [ids[i : i + 500] for i in range(0, len(ids), 500)] * 2

    def ask(batch):
        r = app.test_client().post(
            "/v1/offers/batch", json={"customer_ids": batch, "k": 5, "as_of": as_of}, headers={"X-API-Key": key}
        )
        assert r.status_code == 200, r.json
        return r.json["results"]

    with ThreadPoolExecutor(8) as pool:
        results = [x for part in pool.map(ask, batches) for x in part]
    first: dict = {}
    repeats_differ = sum(first.setdefault(r["customer_id"], r) != r for r in results)
    held = {(c, o) for c, r in first.items() for o in r["held_out"]}
    sent = sum(len(r["offers"]) for r in first.values())
    stored = read_event_store(f"sqlite:///{tmp / 'events.db'}")
    _print("service", len(first), held, sent, control.share)
    print(
        f"  answers asked twice by 8 threads: {repeats_differ} differ; events store: {len(stored):,} held_out "
        f"events, {stored['event_id'].nunique():,} distinct, for {len(held):,} held-back offers"
    )


def export(model: str, control: ControlGroups, as_of: str) -> None:
    from registry.loader import load_bundle

    bundle = load_bundle(model).bundle
    frame, held = export_decisions(bundle, k=5, as_of=as_of, control=control)
    again, held_again = export_decisions(bundle, k=5, as_of=as_of, control=control)
    pairs = set(zip(held[C.CUSTOMER_ID], held[C.OFFER_ID]))
    _print("export", frame[C.CUSTOMER_ID].nunique(), pairs, len(frame), control.share)
    same = pairs == set(zip(held_again[C.CUSTOMER_ID], held_again[C.OFFER_ID]))
    print(f"  rerun holds back the same offers: {same}; rows equal: {frame.equals(again)}")


def _print(name: str, customers: int, held: set, sent: int, share: float) -> None:
    n = len(held) + sent
    sd = np.sqrt(share * (1 - share) / max(n, 1))
    print(
        f"{name}: {customers:,} customers, {n:,} would-be offers, {len(held):,} held back: share "
        f"{len(held) / max(n, 1):.4f} (configured {share:g}; sampling sd {sd:.4f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=C.CHAMPION_URI)
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--as-of", default="2018-01-01")
    args = parser.parse_args()
    control = ControlGroups(share=args.share, salt="benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        service(args.model, control, args.as_of, Path(tmp))
    export(args.model, control, args.as_of)


if __name__ == "__main__":
    main()
