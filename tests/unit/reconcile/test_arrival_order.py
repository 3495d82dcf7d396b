"""Arrival order does not matter: any permutation of a lifecycle's events, with redeliveries,
ends with the same fact sheet and the same assessment as the flow order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.reconcile.domain import CONSISTENT, PENDING, assess
from tests.unit.reconcile.flows import LIFECYCLES, lifecycle
from tests.unit.reconcile.samples import happy_flow
from tests.unit.reconcile.test_domain import ORDER, fold


@settings(max_examples=60, deadline=None)
@given(order=st.permutations(range(7)), repeats=st.lists(st.integers(0, 6), max_size=4))
def test_any_arrival_order_and_any_redelivery_ends_consistent(order, repeats):
    events = happy_flow(ORDER)
    shuffled = [events[i] for i in order] + [events[i] for i in repeats]
    facts = fold(shuffled)
    assert facts == fold(events)
    assert assess(facts).status == CONSISTENT


@settings(max_examples=150, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(LIFECYCLES)))
def test_any_arrival_order_of_a_whole_lifecycle_ends_where_the_flow_ends(data, name):
    events = lifecycle(name, ORDER)
    order = data.draw(st.permutations(range(len(events))), label="arrival order")
    repeats = data.draw(st.lists(st.integers(0, len(events) - 1), max_size=5), label="redelivered")
    facts = fold([events[i] for i in order] + [events[i] for i in repeats])
    assert facts == fold(events)
    assert assess(facts).status == CONSISTENT


def test_pending_until_the_last_fact_arrives():
    events = happy_flow(ORDER)
    statuses = [assess(fold(events[:n])).status for n in range(1, len(events) + 1)]
    assert statuses == [PENDING] * (len(events) - 1) + [CONSISTENT]
