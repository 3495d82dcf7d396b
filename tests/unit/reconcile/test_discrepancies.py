"""Grace periods: a finding becomes a discrepancy once it outlasts the grace, once per kind, and
is resolved when the facts catch up; the fact sheet survives its JSON document."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.reconcile.domain import (
    OrderFacts,
    apply_event,
    assess,
    from_document,
    review,
    status_since,
    to_document,
)
from tests.unit.reconcile.flows import LIFECYCLES, in_order, lifecycle, shipped_payloads
from tests.unit.reconcile.samples import AT, order_placed

ORDER = "O-00000000000000EF"
GRACE = timedelta(seconds=60)


def assessed(payloads):
    facts = OrderFacts(ORDER)
    for env in in_order(ORDER, payloads):
        facts = apply_event(facts, str(env.event_id), env.event_type, env.payload, env.stream_version)
    return assess(facts)


def no_revenue():
    return assessed([p for p in shipped_payloads(ORDER) if p.event_type != "revenue.recognized"])


def test_a_new_finding_waits_for_the_grace_period():
    first = review(ORDER, no_revenue(), {}, set(), AT, GRACE)
    assert first.finding_since == {"shipped_revenue_not_recognised": AT}
    assert (first.detected, first.resolved, first.unraised_since) == ((), (), AT)
    still = review(ORDER, no_revenue(), first.finding_since, set(), AT + GRACE - timedelta(seconds=1),
                   GRACE)
    assert still.detected == () and still.finding_since == first.finding_since


def test_past_the_grace_it_is_raised_with_expected_actual_and_since():
    later = AT + GRACE
    decided = review(ORDER, no_revenue(), {"shipped_revenue_not_recognised": AT}, set(), later, GRACE)
    [raised] = decided.detected
    assert (raised.order_id, raised.kind, raised.since) == (ORDER, "shipped_revenue_not_recognised", AT)
    assert (raised.expected, raised.actual) == ("revenue.recognized for S-1",
                                                 "revenue.recognized for none")
    assert decided.unraised_since is None


def test_an_open_discrepancy_is_not_raised_twice():
    decided = review(ORDER, no_revenue(), {"shipped_revenue_not_recognised": AT},
                     {"shipped_revenue_not_recognised"}, AT + 10 * GRACE, GRACE)
    assert (decided.detected, decided.resolved, decided.unraised_since) == ((), (), None)


def test_resolved_when_the_kind_disappears():
    healthy = assessed(shipped_payloads(ORDER))
    decided = review(ORDER, healthy, {"shipped_revenue_not_recognised": AT},
                     {"shipped_revenue_not_recognised"}, AT + 2 * GRACE, GRACE)
    [resolved] = decided.resolved
    assert (resolved.kind, resolved.resolved_at) == ("shipped_revenue_not_recognised", AT + 2 * GRACE)
    assert decided.finding_since == {} and decided.detected == ()


def test_a_wait_is_never_raised():
    waiting = assessed([order_placed(ORDER)])
    decided = review(ORDER, waiting, {"awaiting_confirmation": AT}, set(), AT + 100 * GRACE, GRACE)
    assert decided.detected == () and decided.unraised_since is None
    assert decided.finding_since == {"awaiting_confirmation": AT}


def test_a_zero_grace_raises_at_once():
    assert len(review(ORDER, no_revenue(), {}, set(), AT, timedelta(0)).detected) == 1


def test_status_since_keeps_the_start_of_a_status():
    later = AT + timedelta(minutes=5)
    assert status_since(None, None, "pending", AT) == AT
    assert status_since("pending", AT, "pending", later) == AT
    assert status_since("pending", AT, "consistent", later) == later


@pytest.mark.parametrize("name", sorted(LIFECYCLES))
def test_the_fact_sheet_survives_its_json_document(name):
    facts = OrderFacts(ORDER)
    for env in lifecycle(name, ORDER):
        facts = apply_event(facts, str(env.event_id), env.event_type, env.payload, env.stream_version)
    document = json.loads(json.dumps(to_document(facts)))
    assert from_document(ORDER, document) == facts


def test_an_empty_document_is_an_empty_sheet():
    assert from_document(ORDER, {}) == OrderFacts(ORDER)


def test_a_reconcile_behind_its_topics_raises_only_once_the_grace_passed_on_its_horizon():
    """Reconcile 5 minutes behind has not seen what the services said in the last 5 minutes:
    a finding older than the grace by the wall clock may be a fact still on its way."""
    kind = "shipped_revenue_not_recognised"
    behind = timedelta(minutes=5)
    held = review(ORDER, no_revenue(), {kind: AT}, set(), AT + GRACE + behind - timedelta(seconds=1),
                  GRACE, behind)
    assert (held.detected, held.deferred, held.unraised_since) == ((), 1, AT)
    assert review(ORDER, no_revenue(), {kind: AT}, set(), AT + GRACE - timedelta(seconds=1), GRACE,
                  behind).deferred == 0  # within the grace anyway: nothing held back
    [raised] = review(ORDER, no_revenue(), {kind: AT}, set(), AT + GRACE + behind, GRACE,
                      behind).detected
    assert (raised.kind, raised.since) == (kind, AT)
    resolved = review(ORDER, assessed(shipped_payloads(ORDER)), {kind: AT}, {kind}, AT, GRACE, behind)
    assert [r.kind for r in resolved.resolved] == [kind]  # resolving never waits


def test_a_replay_raises_exactly_what_live_raised_at_that_look():
    """``recorded`` (a replay): live's raises at this look, whatever the grace says."""
    kind = "shipped_revenue_not_recognised"
    live = review(ORDER, no_revenue(), {kind: AT}, set(), AT + GRACE, GRACE).detected[0]
    # past the grace, but live raised nothing here (it was behind): nothing is raised
    held = review(ORDER, no_revenue(), {kind: AT}, set(), AT + 10 * GRACE, GRACE, recorded={})
    assert (held.detected, held.resolved, held.unraised_since) == ((), (), AT)
    # within the grace by event time, but live raised it here: raised as the replay finds it
    early = AT + GRACE - timedelta(seconds=30)
    [raised] = review(ORDER, no_revenue(), {kind: early}, set(), AT + GRACE, GRACE,
                      recorded={kind: live}).detected
    assert (raised.kind, raised.since, raised.expected) == (kind, early, live.expected)
    # already open: not raised twice
    assert review(ORDER, no_revenue(), {kind: AT}, {kind}, AT + GRACE, GRACE,
                  recorded={kind: live}).detected == ()


def test_a_recorded_raise_the_replayed_facts_do_not_show_is_raised_and_resolved_at_once():
    kind = "shipped_revenue_not_recognised"
    live = review(ORDER, no_revenue(), {kind: AT}, set(), AT + GRACE, GRACE).detected[0]
    decided = review(ORDER, assessed(shipped_payloads(ORDER)), {}, set(), AT + GRACE, GRACE,
                     recorded={kind: live})
    assert decided.detected == (live,)
    assert [(r.kind, r.resolved_at) for r in decided.resolved] == [(kind, AT + GRACE)]
