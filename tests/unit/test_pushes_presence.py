import orjson
import pytest

from podium.transport.presence import GONE, JOIN, LEAVE, PresenceView, message
from podium.transport.pushes import group, replica_channel


def test_events_go_one_payload_per_replica_that_holds_the_player() -> None:
    view = PresenceView()
    view.snapshot({"r1": ["p0", "p1"], "r2": ["p1", "p2"]})  # p1 has sockets on both, p3 none
    events = [(f"p{i}", {"type": "x", "n": i}) for i in range(4)]
    payloads = group(events, "pre:", view.replicas_of)
    assert {channel: [p for p, _ in orjson.loads(payload)] for channel, payload in payloads.items()} == {
        replica_channel("pre:", "r1"): ["p0", "p1"], replica_channel("pre:", "r2"): ["p1", "p2"]}
    assert view.replicas_of("p3") == []


def test_presence_is_the_union_of_the_replicas_sets() -> None:
    view = PresenceView()
    view.apply(message(JOIN, "r1", "alice"))
    view.apply(message(JOIN, "r2", "alice"))  # two sockets on two replicas
    view.apply(message(JOIN, "r1", "bob"))
    view.apply(message(JOIN, "r1", "bob"))  # a repeated message changes nothing
    assert "alice" in view and "bob" in view and len(view) == 2
    view.apply(message(LEAVE, "r1", "alice"))
    assert "alice" in view, "still on r2"
    view.apply(message(LEAVE, "r1", "bob"))
    view.apply(message(LEAVE, "r1", "bob"))
    assert "bob" not in view and len(view) == 1


def test_a_gone_replica_takes_only_its_own_players() -> None:
    view = PresenceView()
    view.snapshot({"r1": ["a", "b"], "r2": ["b", "c"]})
    view.apply(message(GONE, "r1"))
    assert ("a" in view, "b" in view, "c" in view) == (False, True, True)


def test_messages_replayed_over_a_newer_snapshot_end_in_the_latest_state() -> None:
    # subscribe, then snapshot: messages sent before the snapshot arrive after it, in order
    view = PresenceView()
    view.snapshot({"r1": []})  # taken after "+r1 a" and "-r1 a" happened
    view.apply(message(JOIN, "r1", "a"))
    view.apply(message(LEAVE, "r1", "a"))
    assert "a" not in view and len(view) == 0


def test_a_snapshot_replaces_everything_held() -> None:
    view = PresenceView()
    view.apply(message(JOIN, "dead", "ghost"))
    view.snapshot({"r1": ["a"]})  # the dead replica no longer heartbeats: it is not in the snapshot
    assert "ghost" not in view and "a" in view


def test_a_malformed_presence_message_is_an_error() -> None:
    with pytest.raises(ValueError):
        PresenceView().apply(b"?what")
