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
