"""A delivery call's two limits (pairs and encoded bytes) against the
leaderboard's frame cap, where a pair is delivered, and the per-shard
backlog's admission rule."""
from __future__ import annotations

from podium.core.delivery import CHUNK_BYTES, CHUNK_PAIRS, admit, chunks, columns, destinations, encoded_size, fit
from podium.core.periods import DAY_US, PeriodClock
from podium.core.player_state import PlayerBook, now_us
from podium.core.routing import shard_of
from podium.settings import Settings
from podium.transport import channel
from podium.wire.messages import ALL_GAMES, ScoreUpdates

LONGEST_ID = 64  # podium/gateway/frames.py: ids are [A-Za-z0-9_.:@-]{1,64}; regions [a-z0-9-]{1,16}


def test_the_largest_legal_chunk_is_one_frame_well_under_the_receivers_cap() -> None:
    """CHUNK_PAIRS pairs, every id as long as the gateway lets through, each
    pair on every board a delivery can carry (all-time, the current and the
    previous day and week, none delivered yet), their totals too, all bound
    for one leaderboard shard: one part, under CHUNK_BYTES, its frame under MAX_CALL."""
    assert Settings.model_fields["delivery_chunk_pairs"].default == CHUNK_PAIRS
    assert 4 * CHUNK_BYTES <= channel.MAX_CALL
    book = PlayerBook(PeriodClock(0))
    now = now_us()
    pairs = set()
    for n in range(CHUNK_PAIRS):
        player = f"{n:0{LONGEST_ID}d}"
        game = f"g{n % 50:0{LONGEST_ID - 1}d}"
        book.region_change(player, "r" * 16, 1)
        for seq, at in enumerate((now - 7 * DAY_US, now - DAY_US, now), start=2):
            book.apply(seq * 1_000_000 + n, player, game, 2_000_000_000, at)
        pairs.add((player, game))
    updates = book.score_updates(pairs, now, 0)
    assert len(updates) >= 5 * CHUNK_PAIRS  # all-time + 2 days + 2 weeks
    updates.extend(book.total_updates({p for p, _ in pairs}))
    parts = fit(updates)
    assert parts == [updates], "the pair limit alone keeps the largest chunk in one part"
    size = len(channel.encode_call(2**53, "apply", columns(updates)))
    assert size == encoded_size(updates) + len(b'[9007199254740992,"apply",]') + 4
    assert size <= CHUNK_BYTES <= channel.MAX_CALL // 4, size


def test_an_oversized_part_is_halved_until_each_fits() -> None:
    updates = ScoreUpdates()
    for n in range(1000):
        updates.add(f"player-{n}", "arena", "eu", n, n * 7, n)
    limit = encoded_size(updates) // 5
    parts = fit(updates, limit)
    assert len(parts) > 1 and all(encoded_size(p) <= limit for p in parts)
    joined = ScoreUpdates()
    for part in parts:
        joined.extend(part)
    assert joined == updates  # every update, once, in order


def test_pairs_go_in_chunks_of_at_most_the_limit() -> None:
    pairs = [(f"p{n}", "g") for n in range(25)]
    out = chunks(pairs, 10)
    assert [len(c) for c in out] == [10, 10, 5]
    assert set().union(*out) == set(pairs)
    assert chunks([], 10) == []


def test_unlocks_are_admitted_while_each_of_their_shards_is_under_its_limit() -> None:
    # shard 0 full, shard 1 has room for two, shard 2 (totals) plenty
    assert admit({0: 5, 1: 3}, 5, [[0, 2], [1, 2], [1, 2], [1, 2], [2]]) == [False, True, True, False, True]
    assert admit({}, 1, [[0, 0]]) == [True], "an unlock is never refused by its own items"
    assert admit({0: 1}, 1, []) == []


def test_a_pair_goes_to_its_games_shard_and_the_players_total_to_the_totals_shard() -> None:
    for n in (1, 2, 7):
        game, total = destinations(("p", "arena"), n)
        assert game == (shard_of("arena", n), ("p", "arena"))
        assert total == (shard_of(ALL_GAMES, n), ("p", ALL_GAMES))
