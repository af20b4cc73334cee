import orjson

from actors.presence import Presence
from actors.pushes import channel_of, group


def test_events_are_grouped_one_payload_per_partition() -> None:
    events = [(f"p{i}", {"type": "x", "n": i}) for i in range(50)]
    payloads = group(events, "pre:", 4)
    assert 1 < len(payloads) <= 4
    seen = []
    for channel, payload in payloads.items():
        for player_id, event in orjson.loads(payload):
            assert channel_of("pre:", player_id, 4) == channel
            seen.append((player_id, event))
    assert sorted(seen, key=lambda e: e[1]["n"]) == events


def test_presence_follows_counts() -> None:
    p = Presence()
    p.apply(b"alice 1")
    p.apply(b"bob with space 2")
    assert "alice" in p and "bob with space" in p
    p.apply("alice 0")
    assert "alice" not in p
