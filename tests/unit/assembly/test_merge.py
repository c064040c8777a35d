"""Merging partial changes into full deal events: held until complete, late changes, redelivery."""

from salespulse.assembly.changes import Change
from salespulse.assembly.merge import merge

T1, T2, T3 = 1_772_442_000_000, 1_772_528_400_000, 1_772_614_800_000


def change(change_id: str, at: int, **fields: object) -> Change:
    return Change("sf", "deal", "006A", change_id, at, dict(fields))


def test_an_update_before_the_creation_is_held_then_released_in_occurred_at_order() -> None:
    update = merge(None, change("u", T2, stage="qualified"))
    assert update.held and update.events == []
    created = merge(
        update.record, change("c", T1, stage="prospecting", rep_id="rep-01", customer_id="acme", amount="10")
    )
    assert not created.held
    assert [(e["occurred_at"], e["stage"], e["amount"]) for e in created.events] == [
        ("2026-03-02T09:00:00.000Z", "prospecting", "10"),
        ("2026-03-03T09:00:00.000Z", "qualified", "10"),
    ]
    # Redelivered: nothing new is merged; the same events (same ids) are sent again.
    again = merge(created.record, change("u", T2, stage="qualified"))
    assert again.duplicate and again.record == created.record
    assert [e["event_id"] for e in again.events] == [created.events[1]["event_id"]]


def test_a_late_older_change_corrects_the_later_states_and_leaves_the_earlier_ones() -> None:
    first = merge(
        None, change("c", T1, stage="prospecting", rep_id="rep-01", customer_id="acme", amount="10")
    )
    third = merge(first.record, change("w", T3, stage="won"))
    late = merge(third.record, change("a", T2, amount="25"))
    assert [(e["occurred_at"][:10], e["stage"], e["amount"]) for e in late.events] == [
        ("2026-03-03", "prospecting", "25"),
        ("2026-03-04", "won", "25"),
    ]
    assert late.events[1]["event_id"] != third.events[0]["event_id"]  # another state, another id
    assert merge(late.record, change("n", T3)).events == []  # the state at T3 did not change


def test_an_activity_is_emitted_once_when_complete() -> None:
    def call(change_id: str, **fields: object) -> Change:
        return Change("hs", "call", "7301", change_id, T1, dict(fields))

    part = merge(
        None, call("1", occurred_at_ms=T1, rep_id="rep-01", direction="outbound", duration_seconds=3)
    )
    assert part.held and part.events == []
    whole = merge(part.record, call("2", customer_id="acme", outcome="connected"))
    assert [(e["event_id"], e["event_type"], e["occurred_at"]) for e in whole.events] == [
        ("hs:call:7301", "call", "2026-03-02T09:00:00.000Z")
    ]
    assert merge(whole.record, call("3", outcome="busy")).events == []


def hubspot_call(change_id: str, *, release: bool = False, **fields: object) -> Change:
    return Change("hs", "call", "7301", change_id, T1, dict(fields), ("deal_id",), release)


WHOLE_CALL = {
    "occurred_at_ms": T1,
    "rep_id": "rep-01",
    "customer_id": "acme",
    "direction": "outbound",
    "duration_seconds": 300,
    "outcome": "connected",
}


def test_an_activity_that_awaits_its_deal_link_is_emitted_with_it_whenever_it_comes() -> None:
    complete = merge(None, hubspot_call("props", **WHOLE_CALL))
    assert complete.awaiting and complete.held and complete.events == []
    linked = merge(complete.record, hubspot_call("link", deal_id="9001"))
    assert not linked.awaiting
    assert [(e["event_id"], e["deal_id"], e["outcome"]) for e in linked.events] == [
        ("hs:call:7301", "9001", "connected")
    ]
    # The link first, then the rest: the same event.
    first = merge(
        merge(None, hubspot_call("link", deal_id="9001")).record, hubspot_call("props", **WHOLE_CALL)
    )
    assert first.events == linked.events
    # Redelivered, or released after the link: the emitted event again, unchanged.
    assert merge(linked.record, hubspot_call("props", **WHOLE_CALL)).events == linked.events
    late_release = merge(linked.record, hubspot_call("release", release=True))
    assert late_release.duplicate and not late_release.released and late_release.events == linked.events


def test_a_released_activity_is_emitted_unlinked_and_a_later_link_changes_nothing() -> None:
    complete = merge(None, hubspot_call("props", **WHOLE_CALL))
    released = merge(complete.record, hubspot_call("release", release=True))
    assert released.released and not released.awaiting
    assert [(e["event_id"], "deal_id" in e) for e in released.events] == [("hs:call:7301", False)]
    assert merge(released.record, hubspot_call("release", release=True)).events == released.events
    late_link = merge(released.record, hubspot_call("link", deal_id="9001"))
    assert late_link.events == [] and not late_link.awaiting
    assert merge(late_link.record, hubspot_call("props", **WHOLE_CALL)).events == released.events
    # A removed association is a known link (no deal): emitted at once.
    removed = merge(complete.record, hubspot_call("unlink", deal_id=None))
    assert [("deal_id" in e) for e in removed.events] == [False]
