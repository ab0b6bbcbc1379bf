"""The events database on SQLite and PostgreSQL: idempotent inserts, each customer's rows typed
the same on the one-customer path and the many-customer path, events from another worker seen
at once, and recovery from a broken connection."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from recsys.data.event_store import EventStore
from recsys.offers import EventArrays


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return request.getfixturevalue("postgres_url")


def _event(i, customer="7", offer="101", kind="sent", ts="2018-01-02T10:00:00"):
    return {"event_id": f"e{i}", "customer_id": customer, "offer_id": offer, "event": kind, "timestamp": ts}


def test_rows_are_typed_sorted_and_the_same_for_one_or_many_customers(url):
    store = EventStore(url)
    assert (
        store.add(
            [
                _event(1, ts="2018-01-03T09:00:00"),
                _event(2, kind="redeemed", ts="2018-01-02T08:30:00"),
                _event(3, customer="8", offer="A-7"),
            ]
        )
        == 3
    )
    assert store.add([_event(1, ts="2018-01-03T09:00:00"), _event(4, customer="8")]) == 1  # e1 again: stored once
    one = store.rows_by_customer([7], id_type=int)
    many = store.rows_by_customer([7, 8, 9], id_type=int)
    assert one == {7: ((101, "redeemed", datetime(2018, 1, 2, 8, 30)), (101, "sent", datetime(2018, 1, 3, 9, 0)))}
    assert many[7] == one[7] and 9 not in many
    assert [r[0] for r in many[8]] == [101, "A-7"]  # offer ids: integers where they are, text otherwise
    arrays = EventArrays.from_rows(many)
    assert list(arrays.customer_id) == [7, 7, 8, 8] and arrays.timestamp.dtype == "datetime64[ns]"


def test_recorded_events_are_stored_once_and_the_first_stored_wins(url):
    store = EventStore(url)
    store.record([_event(1, kind="held_out"), _event(2, customer="8", kind="held_out"), _event(1, kind="held_out")])
    # e1 again, dated later, from another worker: the first stored stays; e3 is new
    store.record([_event(1, kind="held_out", ts="2018-01-05T00:00:00"), _event(3, offer="102", kind="held_out")])
    store.record([])
    rows = store.rows_by_customer([7, 8], id_type=int)
    assert rows == {
        7: ((101, "held_out", datetime(2018, 1, 2, 10, 0)), (102, "held_out", datetime(2018, 1, 2, 10, 0))),
        8: ((101, "held_out", datetime(2018, 1, 2, 10, 0)),),
    }
    assert store.add([_event(2, customer="8", kind="held_out")]) == 0  # add sees them as stored


def test_an_event_stored_by_another_worker_is_seen_at_once(url):
    reader, writer = EventStore(url), EventStore(url)
    assert reader.rows_by_customer(["7"]) == {}
    writer.add([_event(1)])
    assert len(reader.rows_by_customer(["7"])["7"]) == 1
    writer.add([_event(2, ts="2018-01-04T10:00:00")])
    assert len(reader.rows_by_customer(["7"])["7"]) == 2
    reader.add([_event(3, ts="2018-01-05T10:00:00")])  # the reader's own store, another connection
    assert len(reader.rows_by_customer(["7"])["7"]) == 3
    assert reader.rows_by_customer(["7"]) == writer.rows_by_customer(["7", "8"])


def test_each_thread_reads_on_its_own_connection_and_a_broken_one_is_replaced(url):
    store = EventStore(url)
    store.add([_event(1)])
    store.rows_by_customer(["7"])
    mine = store._local.conn
    seen = {}

    def other():
        seen["rows"] = store.rows_by_customer(["7"])
        seen["conn"] = store._local.conn

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen["rows"] == store.rows_by_customer(["7"]) and seen["conn"] is not mine
    mine.close()  # as if the database had dropped it
    assert len(store.rows_by_customer(["7"])["7"]) == 1  # answered through the pool
    assert store._local.conn is None
    assert len(store.rows_by_customer(["7"])["7"]) == 1 and store._local.conn is not None  # and a new one opened


def test_after_a_fork_the_store_opens_its_own_connections(url):
    store = EventStore(url)
    store.add([_event(1)])
    store.rows_by_customer(["7"])
    inherited = store._local.conn
    assert store.engine.pool.checkedin() >= 1  # the connection add() used waits in the pool
    store.after_fork()
    assert store.engine.pool.checkedin() == 0 and getattr(store._local, "conn", None) is None
    assert len(store.rows_by_customer(["7"])["7"]) == 1 and store._local.conn is not inherited


def test_events_of_customers_new_to_an_integer_id_model_are_read_back_as_text(tmp_path):
    """Regression: a held_out event of a new customer ("new-1") in the store of a model with
    integer ids made every later request for that customer fail (int("new-1"))."""
    store = EventStore(f"sqlite:///{tmp_path / 'e.db'}")
    store.add(
        [
            {
                "event_id": "x",
                "customer_id": "new-1",
                "offer_id": "7",
                "event": "held_out",
                "timestamp": "2024-01-01T00:00:00",
            },
            {
                "event_id": "y",
                "customer_id": "12",
                "offer_id": "7",
                "event": "sent",
                "timestamp": "2024-01-01T00:00:00",
            },
        ]
    )
    rows = store.rows_by_customer(["new-1", 12], id_type=int)
    assert set(rows) == {"new-1", 12} and rows["new-1"][0][:2] == (7, "held_out")
