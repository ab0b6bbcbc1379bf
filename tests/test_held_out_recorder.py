"""The service's held_out events (serving.answers.HeldOutRecorder): a request returns once its
events are committed, concurrent requests commit together, and a store that fails keeps the
events waiting without every waiting request trying it again."""

from __future__ import annotations

import threading
import time

import numpy as np

from recsys import constants as C
from recsys.incrementality import ControlGroups
from serving.answers import HeldOutRecorder
from serving.dependencies import Dependency


class SlowStore:
    """An events store whose every write takes ``seconds``; the first ``failures`` fail."""

    def __init__(self, seconds: float = 0.05, failures: int = 0):
        self.seconds, self.failures = seconds, failures
        self.batches: list[list[str]] = []
        self.calls = 0
        self._lock = threading.Lock()

    def record(self, events):
        time.sleep(self.seconds)
        with self._lock:
            self.calls += 1
            if self.calls <= self.failures:
                raise OSError("the events store is down")
            self.batches.append([e[C.EVENT_ID] for e in events])

    @property
    def stored(self) -> set:
        with self._lock:
            return {i for b in self.batches for i in b}


def _held(customer: str, offers: int = 2) -> dict:
    return {
        C.CUSTOMER_ID: np.array([customer] * offers, dtype=object),
        C.OFFER_ID: np.array([f"OF{j}" for j in range(offers)], dtype=object),
        C.PROPENSITY: np.full(offers, 0.1),
    }


def _at_once(recorder, customers: list[str], after=None) -> list:
    """Each customer's decision recorded from its own thread, all started together; what
    ``after(customer)`` says right after each call returned."""
    control, start, seen = ControlGroups(), threading.Barrier(len(customers)), {}

    def run(c):
        start.wait()
        recorder(_held(c), control, {})
        seen[c] = after(c) if after else None

    threads = [threading.Thread(target=run, args=(c,)) for c in customers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [seen[c] for c in customers]


def test_concurrent_requests_return_once_their_events_are_committed_together():
    store = SlowStore()
    recorder = HeldOutRecorder(store, Dependency("events store"))
    control = ControlGroups()
    customers = [f"C{i}" for i in range(8)]

    def committed(c):  # the ids of this request's events, all stored when it returns
        return {control.event_id(c, f"OF{j}") for j in range(2)} <= store.stored

    assert all(_at_once(recorder, customers, committed))
    assert len(store.stored) == 16 and recorder.pending == 0
    assert store.calls < len(customers)  # fewer transactions than requests
    recorder(_held("C0"), control, {})  # seen already: no write
    assert store.calls == len(store.batches)


def test_requests_behind_a_failed_write_leave_their_events_for_the_next():
    store = SlowStore(failures=1)
    health = Dependency("events store")
    recorder = HeldOutRecorder(store, health)
    _at_once(recorder, [f"C{i}" for i in range(6)])
    # the first write failed: the requests that waited behind it did not try the store again
    assert store.calls == 1 and not store.stored and recorder.pending == 12
    assert health.as_dict()["ok"] is False
    recorder(_held("C9"), ControlGroups(), {})  # the next request writes every waiting event
    assert len(store.stored) == 14 and recorder.pending == 0 and health.as_dict()["ok"] is True
